// Package probe checks a built image from the inside, before it is exported:
// it runs commands in gateway containers on the image's root filesystem, as
// the image's own user, entrypoint and command, within the same BuildKit
// session. No Docker engine is needed and an image whose probe fails is never
// pushed, because the build function returns the failure instead of a result.
//
// What is checked follows from the variant's data (its torch flavour, its
// port and health path, its dev tools), so the same probes serve every
// image the table describes.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Result is one probe's outcome.
type Result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Failed returns the failed results.
func Failed(rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

// Image is what the probes run against.
type Image struct {
	Ref      gwclient.Reference
	Config   dockerspec.DockerOCIImage
	Platform ocispecs.Platform
	// Mounts are extra read-only mounts (the dev image's code).
	Mounts []gwclient.Mount
}

// Container runs processes in one gateway container on the image.
type Container struct {
	gw  gwclient.Client
	img Image
	ctr gwclient.Container
	mu  sync.Mutex
}

// Start creates the container. Its network is its own (loopback only), so
// servers of several images probed at once never share a port.
func Start(ctx context.Context, gw gwclient.Client, img Image) (*Container, error) {
	mounts := append([]gwclient.Mount{{Dest: "/", Ref: img.Ref, MountType: pb.MountType_BIND}}, img.Mounts...)
	mounts = append(mounts, gwclient.Mount{Dest: "/tmp", MountType: pb.MountType_TMPFS})
	p := img.Platform
	ctr, err := gw.NewContainer(ctx, gwclient.NewContainerRequest{
		Mounts:   mounts,
		NetMode:  pb.NetMode_NONE,
		Hostname: "probe",
		Platform: &pb.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
	})
	if err != nil {
		return nil, fmt.Errorf("starting a probe container: %w", err)
	}
	c := &Container{gw: gw, img: img, ctr: ctr}
	// The first process is the container's init: when it exits the
	// container goes with it. Keep one that waits until Release, so every
	// probe runs as a process of its own next to it.
	if _, _, _, err := c.start(ctx, "", []string{"/bin/sh", "-c", "while :; do sleep 3600; done"}); err != nil {
		ctr.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("starting the probe container's init: %w", err)
	}
	return c, nil
}

// Release frees the container.
func (c *Container) Release(ctx context.Context) error { return c.ctr.Release(ctx) }

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() < 1<<20 {
		b.b.Write(p)
	}
	return len(p), nil
}
func (b *buffer) Close() error { return nil }
func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Exec is one process's outcome.
type Exec struct {
	Stdout, Stderr string
	Err            error
}

const exitMarker = "__ktrdr_probe_exit="

// Run runs args as user (the image's when empty) with the image's env and
// workdir, and waits for it.
//
// The command runs under a shell that always exits 0 and writes the
// command's status after its stderr: a process that exits non-zero in a
// gateway container makes the next processes of that container report
// the same failure at once (seen with BuildKit v0.34), so no probe
// process may exit non-zero.
func (c *Container) Run(ctx context.Context, user string, args ...string) Exec {
	wrapped := append([]string{"/bin/sh", "-c", `"$@"; echo "` + exitMarker + `$?" >&2`, "sh"}, args...)
	proc, out, errb, err := c.start(ctx, user, wrapped)
	if err != nil {
		return Exec{Err: err}
	}
	if err := proc.Wait(); err != nil {
		return Exec{Stdout: out.String(), Stderr: errb.String(), Err: err}
	}
	stderr := errb.String()
	i := strings.LastIndex(stderr, exitMarker)
	if i < 0 {
		return Exec{Stdout: out.String(), Stderr: stderr, Err: errors.New("the probe shell ended without reporting the command's status")}
	}
	code := strings.TrimSpace(stderr[i+len(exitMarker):])
	r := Exec{Stdout: out.String(), Stderr: stderr[:i]}
	if code != "0" {
		r.Err = fmt.Errorf("exit code: %s", code)
	}
	return r
}

func (c *Container) start(ctx context.Context, user string, args []string) (gwclient.ContainerProcess, *buffer, *buffer, error) {
	if user == "" {
		user = c.img.Config.Config.User
	}
	cwd := c.img.Config.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	out, errb := &buffer{}, &buffer{}
	proc, err := c.ctr.Start(ctx, gwclient.StartRequest{
		Args:   args,
		Env:    c.img.Config.Config.Env,
		User:   user,
		Cwd:    cwd,
		Stdout: out,
		Stderr: errb,
	})
	return proc, out, errb, err
}

// Serve starts the image's entrypoint and command (the server) in the
// background and returns a function that stops it and returns its output.
func (c *Container) Serve(ctx context.Context) (stop func() string, err error) {
	args := append(append([]string{}, c.img.Config.Config.Entrypoint...), c.img.Config.Config.Cmd...)
	if len(args) == 0 {
		return nil, errors.New("the image has neither entrypoint nor command")
	}
	sctx, cancel := context.WithCancel(ctx)
	proc, out, errb, err := c.start(sctx, "", args)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting %v: %w", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- proc.Wait() }()
	return func() string {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		return tail(out.String()+errb.String(), 1500)
	}, nil
}

// HTTPGet polls url from inside the container with curl until it answers
// 200 or timeout passes, and returns the body.
func (c *Container) HTTPGet(ctx context.Context, url string, timeout time.Duration) (string, error) {
	tries := int(timeout / (500 * time.Millisecond))
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do if curl -fsS --max-time 2 %s; then exit 0; fi; i=$((i+1)); sleep 0.5; done; curl -fsS --max-time 2 %s`, tries, url, url)
	start := time.Now()
	r := c.Run(ctx, "", "/bin/sh", "-c", script)
	if r.Err != nil {
		return "", fmt.Errorf("GET %s: no answer in %s: %v: %s", url, time.Since(start).Round(time.Second), r.Err, tail(r.Stdout+r.Stderr, 300))
	}
	return r.Stdout, nil
}

// JSON runs a Python snippet that prints one JSON object and decodes it.
func (c *Container) JSON(ctx context.Context, code string, v any) error {
	r := c.Run(ctx, "", "python", "-c", code)
	if r.Err != nil {
		return fmt.Errorf("%v: %s", r.Err, tail(r.Stderr, 500))
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(lastLine(r.Stdout))), v); err != nil {
		return fmt.Errorf("decoding %q: %w", tail(r.Stdout, 300), err)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
