package world

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// Cmd is a command Probe runs in a container of the solved state.
type Cmd struct {
	Args []string
	Env  []string // default: PATH and LANG of the base images
	Dir  string   // default: /
	User string   // default: root
}

// Output is what a Cmd printed and how it ended.
type Output struct {
	Stdout, Stderr string
	ExitCode       int
}

func (o Output) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", o.ExitCode, o.Stdout, o.Stderr)
}

// ProbeOptions configure Probe.
type ProbeOptions struct {
	// Log receives BuildKit's plain progress of the solve. Nil discards.
	Log io.Writer
	// Platform is the platform of the state and its containers; nil is
	// linux/amd64. linux/arm64 runs under QEMU (World.Emulation).
	Platform *ocispecs.Platform
	// LocalDirs maps the names of llb.Local sources in the state to
	// directories on this machine.
	LocalDirs map[string]string
}

// Probe solves st on the world's buildkitd (Evaluate, so the graph runs
// before anything is probed) and runs each command, one after the other,
// each in a fresh gateway container whose root filesystem is the result,
// with no network. It returns each command's output; a command that exits
// non-zero is reported in its Output, not as an error.
func (w *World) Probe(ctx context.Context, st llb.State, opts ProbeOptions, cmds ...Cmd) ([]Output, error) {
	plat := platform
	if opts.Platform != nil {
		plat = *opts.Platform
	}
	def, err := st.Marshal(ctx, llb.Platform(plat))
	if err != nil {
		return nil, fmt.Errorf("marshalling the probed state: %w", err)
	}
	c, err := w.Client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	solveOpt := client.SolveOpt{LocalMounts: map[string]fsutil.FS{}}
	for name, dir := range opts.LocalDirs {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return nil, fmt.Errorf("local source %s: %w", name, err)
		}
		solveOpt.LocalMounts[name] = fs
	}
	var outs []Output
	err = build(ctx, c, solveOpt, log, func(ctx context.Context, gw gwclient.Client) (*gwclient.Result, error) {
		res, err := gw.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), Evaluate: true})
		if err != nil {
			return nil, err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		for _, cmd := range cmds {
			out, err := runInContainer(ctx, gw, ref, plat, cmd)
			if err != nil {
				return nil, err
			}
			outs = append(outs, out)
		}
		return gwclient.NewResult(), nil
	})
	return outs, err
}

// runInContainer runs one command as the init process of a fresh container
// (a container ends with its first process, so each command gets its own).
func runInContainer(ctx context.Context, gw gwclient.Client, ref gwclient.Reference, platform ocispecs.Platform, cmd Cmd) (Output, error) {
	ctr, err := gw.NewContainer(ctx, gwclient.NewContainerRequest{
		Mounts:   []gwclient.Mount{{Dest: "/", MountType: pb.MountType_BIND, Ref: ref}},
		NetMode:  pb.NetMode_NONE,
		Platform: &pb.Platform{OS: platform.OS, Architecture: platform.Architecture},
	})
	if err != nil {
		return Output{}, fmt.Errorf("starting a container: %w", err)
	}
	defer ctr.Release(context.WithoutCancel(ctx))
	var stdout, stderr bytes.Buffer
	env := cmd.Env
	if env == nil {
		env = commonEnv
	}
	proc, err := ctr.Start(ctx, gwclient.StartRequest{
		Args: cmd.Args, Env: env, Cwd: orDefault(cmd.Dir, "/"), User: cmd.User,
		Stdout: nopCloser{&stdout}, Stderr: nopCloser{&stderr},
	})
	if err != nil {
		return Output{}, fmt.Errorf("running %s: %w", strings.Join(cmd.Args, " "), err)
	}
	out := Output{}
	if err := proc.Wait(); err != nil {
		var exit *gwpb.ExitError
		if !errors.As(err, &exit) {
			return Output{}, fmt.Errorf("running %s: %w", strings.Join(cmd.Args, " "), err)
		}
		out.ExitCode = int(exit.ExitCode)
	}
	out.Stdout, out.Stderr = stdout.String(), stderr.String()
	return out, nil
}

// build runs a gateway build function with plain progress written to log.
func build(ctx context.Context, c *client.Client, opt client.SolveOpt, log io.Writer, fn gwclient.BuildFunc) error {
	ch := make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if d, err := newPlainDisplay(log); err == nil {
			d(ch)
		} else {
			for range ch {
			}
		}
	}()
	_, err := c.Build(ctx, opt, "", fn, ch)
	<-done
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
