package llb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPath is the PATH of a Linux image whose base sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImageConfig is what an application sets on top of its base image's
// config. Env entries replace the base's of the same key; PathPrepend
// goes in front of the base's PATH; everything else replaces the base's.
type ImageConfig struct {
	User         string
	WorkingDir   string
	Env          []string
	PathPrepend  []string
	ExposedPorts []string
	Healthcheck  *dockerspec.HealthcheckConfig
	Volumes      []string
	Entrypoint   []string
	Cmd          []string
	Labels       map[string]string
	StopSignal   string
}

// Validate checks env entries (KEY=VALUE), ports (N or N/tcp|udp|sctp,
// 1-65535) and paths.
func (c ImageConfig) Validate() error {
	for _, e := range c.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("env %q: expected KEY=VALUE", e)
		}
	}
	for _, p := range c.ExposedPorts {
		if _, err := ParsePort(p); err != nil {
			return err
		}
	}
	for _, v := range c.Volumes {
		if err := checkAbs("volume", v); err != nil {
			return err
		}
	}
	if c.WorkingDir != "" {
		if err := checkAbs("working dir", c.WorkingDir); err != nil {
			return err
		}
	}
	return nil
}

// ParsePort checks a port ("8000" or "8000/tcp") and returns it in the
// image config's form ("8000/tcp").
func ParsePort(p string) (string, error) {
	num, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return "", fmt.Errorf("port %q: expected a number from 1 to 65535, optionally /tcp, /udp or /sctp", p)
	}
	return strconv.Itoa(n) + "/" + proto, nil
}

// MergeConfig applies c to the base image's config for the platform. The
// base's env (PATH, LANG...) is kept except where c overrides it; labels
// are added to the base's. created is SOURCE_DATE_EPOCH (nil: unset).
func MergeConfig(base dockerspec.DockerOCIImage, c ImageConfig, p ocispecs.Platform, created *time.Time) dockerspec.DockerOCIImage {
	img := base
	img.Platform = p
	img.OS, img.Architecture, img.Variant = p.OS, p.Architecture, p.Variant
	if img.OS == "" {
		img.OS = "linux"
	}
	img.RootFS = ocispecs.RootFS{Type: "layers"}
	img.Created = created
	cfg := base.Config
	cfg.Env = mergeEnv(base.Config.Env, c.Env, c.PathPrepend)
	if c.User != "" {
		cfg.User = c.User
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	if len(c.ExposedPorts) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, port := range c.ExposedPorts {
			if norm, err := ParsePort(port); err == nil {
				cfg.ExposedPorts[norm] = struct{}{}
			}
		}
	}
	if c.Healthcheck != nil {
		hc := *c.Healthcheck
		cfg.Healthcheck = &hc
	}
	if len(c.Volumes) > 0 {
		cfg.Volumes = map[string]struct{}{}
		for _, v := range c.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	if c.Entrypoint != nil {
		cfg.Entrypoint = slices.Clone(c.Entrypoint)
		// A new entrypoint drops the base's command, as Dockerfiles do.
		cfg.Cmd = nil
	}
	if c.Cmd != nil {
		cfg.Cmd = slices.Clone(c.Cmd)
	}
	if c.StopSignal != "" {
		cfg.StopSignal = c.StopSignal
	}
	labels := maps.Clone(base.Config.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, c.Labels)
	cfg.Labels = labels
	img.Config = cfg
	return img
}

func mergeEnv(base, over, pathPrepend []string) []string {
	var keys []string
	vals := map[string]string{}
	set := func(e string) {
		k, v, _ := strings.Cut(e, "=")
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for _, e := range base {
		set(e)
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH=" + DefaultPath)
	}
	for _, e := range over {
		set(e)
	}
	if len(pathPrepend) > 0 {
		vals["PATH"] = strings.Join(pathPrepend, ":") + ":" + vals["PATH"]
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// NormalizeRef checks an image reference and returns it fully qualified
// (python:3.13-slim becomes docker.io/library/python:3.13-slim).
func NormalizeRef(option, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%s %q: not a valid image reference: %w", option, ref, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// Image is a base image: its LLB state and, once resolved, its config.
type Image struct {
	Ref    string
	State  llb.State
	Config dockerspec.DockerOCIImage
	// Resolved tells whether Config came from the image (through the meta
	// resolver) or is empty because no resolver was given (a plan).
	Resolved bool
}

// BaseImage returns the image ref for the platform. With a resolver the
// config is fetched, the state is pinned to the resolved digest and carries
// the image's env, workdir and user, as a Dockerfile FROM would; without
// one (planning with no daemon) the state is the unpinned ref.
func BaseImage(ctx context.Context, r llb.ImageMetaResolver, ref string, b Build) (Image, error) {
	name := fmt.Sprintf("%s (%s)", ref, platforms.Format(b.Platform))
	if r == nil {
		return Image{Ref: ref, State: llb.Image(ref, llb.Platform(b.Platform), llb.WithCustomName(name))}, nil
	}
	resolved, dgst, dt, err := r.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
		LogName:  "resolve image config for " + name,
		ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &b.Platform},
	})
	if err != nil {
		return Image{}, fmt.Errorf("resolving base image %s: %w", name, err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(dt, &img); err != nil {
		return Image{}, fmt.Errorf("base image %s: config is not JSON: %w", name, err)
	}
	if resolved != "" {
		ref = resolved
	}
	if dgst != "" {
		if named, err := reference.ParseNormalizedNamed(ref); err == nil {
			if canon, err := reference.WithDigest(reference.TrimNamed(named), dgst); err == nil {
				ref = canon.String()
			}
		}
	}
	st, err := llb.Image(ref, llb.Platform(b.Platform), llb.WithCustomName(name)).WithImageConfig(dt)
	if err != nil {
		return Image{}, fmt.Errorf("base image %s: %w", name, err)
	}
	return Image{Ref: ref, State: st, Config: img, Resolved: true}, nil
}
