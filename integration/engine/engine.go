// Package engine runs the seed's own verification of KTRDR's four images
// on a real Docker engine: what the engine is (version, storage driver,
// image store, cgroups, insecure registries, buildx, Compose), the images
// loaded into it (built by the engine's builder through our frontend where
// it can, else by our buildkitd and then docker load / docker pull), the
// seed's `docker images` and `docker run` checks, the smoke tests of the
// production backend (health from inside and from the host, HEALTHCHECK,
// docker stop) and the development Compose file. `make verify` and the
// integration test TestVerify both run Verify.
//
// Everything goes through the docker CLI, as a developer would type it;
// nothing here talks to the engine's API directly.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Docker runs the docker CLI with an environment of its own (DOCKER_CONFIG
// naming the directory that holds the buildx plugin).
type Docker struct {
	// Bin is the docker CLI ("docker" from PATH by default).
	Bin string
	// Env is added to the process environment of every command.
	Env []string
}

// Output runs docker with args and returns its combined output.
func (d Docker) Output(ctx context.Context, args ...string) (string, error) {
	return d.run(ctx, "", d.bin(), args...)
}

// Shell runs a command line with sh -c, as typed (pipes, && and ||), in
// dir, with the same environment as docker commands.
func (d Docker) Shell(ctx context.Context, dir, line string) (string, error) {
	return d.run(ctx, dir, "sh", "-c", line)
}

func (d Docker) bin() string {
	if d.Bin == "" {
		return "docker"
	}
	return d.Bin
}

func (d Docker) run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Facts are what the machine's Docker really is.
type Facts struct {
	ClientVersion, ClientAPI string
	ServerVersion, ServerAPI string
	Containerd, Runc         string
	StorageDriver            string
	// ContainerdStore is whether images live in containerd's image
	// store (the "driver-type io.containerd.snapshotter.v1" status)
	// rather than in the graph driver's classic store.
	ContainerdStore bool
	CgroupVersion   string
	CgroupDriver    string
	// Insecure lists the registries the engine talks to over plain HTTP.
	Insecure []string
	// Buildx is `docker buildx version`, empty when the plugin is missing.
	Buildx string
	// ComposeV2 is `docker compose version`, ComposeV1 `docker-compose
	// version`; empty when absent.
	ComposeV2, ComposeV1 string
}

// NotAvailable is the reason the engine cannot be used (docker missing,
// the daemon not running or not reachable), nil when `docker info` works.
func (d Docker) NotAvailable(ctx context.Context) error {
	if _, err := exec.LookPath(d.bin()); err != nil {
		return fmt.Errorf("no docker CLI: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := d.Output(ctx, "info", "--format", "{{.ServerVersion}}")
	if err != nil || strings.TrimSpace(out) == "" {
		return fmt.Errorf("docker info fails (no Docker engine reachable): %v: %s", err, strings.TrimSpace(out))
	}
	return nil
}

// Facts reads the engine's version and configuration with docker version
// and docker info, and which buildx and Compose are installed.
func (d Docker) Facts(ctx context.Context) (Facts, error) {
	var f Facts
	out, err := d.Output(ctx, "version", "--format", "{{json .}}")
	if err != nil {
		return f, fmt.Errorf("docker version: %v: %s", err, out)
	}
	var v struct {
		Client struct{ Version, APIVersion string }
		Server struct {
			Version, APIVersion string
			Components          []struct{ Name, Version string }
		}
	}
	if err := json.Unmarshal([]byte(firstJSON(out)), &v); err != nil {
		return f, fmt.Errorf("docker version: %w: %s", err, out)
	}
	f.ClientVersion, f.ClientAPI = v.Client.Version, v.Client.APIVersion
	f.ServerVersion, f.ServerAPI = v.Server.Version, v.Server.APIVersion
	for _, c := range v.Server.Components {
		switch c.Name {
		case "containerd":
			f.Containerd = c.Version
		case "runc":
			f.Runc = c.Version
		}
	}
	out, err = d.Output(ctx, "info", "--format", "{{json .}}")
	if err != nil {
		return f, fmt.Errorf("docker info: %v: %s", err, out)
	}
	var info struct {
		Driver         string
		DriverStatus   [][2]string
		CgroupVersion  string
		CgroupDriver   string
		RegistryConfig struct {
			InsecureRegistryCIDRs []string
			IndexConfigs          map[string]struct {
				Name   string
				Secure bool
			}
		}
	}
	if err := json.Unmarshal([]byte(firstJSON(out)), &info); err != nil {
		return f, fmt.Errorf("docker info: %w: %s", err, out)
	}
	f.StorageDriver, f.CgroupVersion, f.CgroupDriver = info.Driver, info.CgroupVersion, info.CgroupDriver
	for _, s := range info.DriverStatus {
		if s[0] == "driver-type" && strings.Contains(s[1], "snapshotter") {
			f.ContainerdStore = true
		}
	}
	f.Insecure = append(f.Insecure, info.RegistryConfig.InsecureRegistryCIDRs...)
	for name, ic := range info.RegistryConfig.IndexConfigs {
		if !ic.Secure {
			f.Insecure = append(f.Insecure, name)
		}
	}
	if out, err := d.Output(ctx, "buildx", "version"); err == nil {
		f.Buildx = strings.TrimSpace(out)
	}
	if out, err := d.Output(ctx, "compose", "version"); err == nil {
		f.ComposeV2 = strings.TrimSpace(out)
	}
	if out, err := d.run(ctx, "", "docker-compose", "version", "--short"); err == nil {
		f.ComposeV1 = strings.TrimSpace(out)
	}
	return f, nil
}

// firstJSON skips what the CLI prints before its JSON (warnings).
func firstJSON(s string) string {
	if i := strings.IndexByte(s, '{'); i >= 0 {
		return s[i:]
	}
	return s
}

// InsecureAllows reports whether the engine talks plain HTTP to host
// (a "127.0.0.1:5000"): listed by name or inside a listed CIDR.
func (f Facts) InsecureAllows(host string) bool {
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	for _, r := range f.Insecure {
		if r == host {
			return true
		}
		if strings.Contains(r, "/") && cidrContains(r, h) {
			return true
		}
	}
	return false
}

// ImageSize is the SIZE docker images shows for ref, in bytes (its
// uncompressed size in the engine's store), and false when the engine
// does not have ref.
func (d Docker) ImageSize(ctx context.Context, ref string) (int64, bool) {
	out, err := d.Output(ctx, "image", "inspect", "--format", "{{.Size}}", ref)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	return n, err == nil
}

// ImageID is the engine's id of ref (its config digest).
func (d Docker) ImageID(ctx context.Context, ref string) (string, error) {
	out, err := d.Output(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		return "", errors.New(strings.TrimSpace(out))
	}
	return strings.TrimSpace(out), nil
}

func cidrContains(cidr, host string) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && p.Contains(a)
}
