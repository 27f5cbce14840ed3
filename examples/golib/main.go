// Command golib shows ktrdr-images used as a Go library, without its CLI
// or its frontend: a platform team's own program that declares an image
// set in Go and builds it on a buildkitd with BuildKit's client.
//
// It uses only the public packages (variants, llb through variants,
// python/uvlock) and BuildKit's; the CLI's extras (concurrent solves,
// probes, SBOMs, caches, the report) live in internal/ and are not
// importable. The code path is:
//
//	uvlock.LoadProject + variants.LoadSpec   the project, its lock, its images
//	imageSet                                 the image set, composed in Go
//	variants.Inputs{...}                     project, lock, set, context as LLB
//	variants.Graphs                          one LLB graph per image
//	State.Marshal                            the definition (plan mode prints its digest)
//	client.Build + gateway.Solve             the image, exported (and pushed) by buildkitd
//
// The set is the project's images ([tool.ktrdr-images] in pyproject.toml,
// or KTRDR's four when it has none) plus one declared here: api-debug, a
// copy of the project's default target with debug logging and Python's
// development mode.
//
// Plan, without a daemon (each image's name, platform, LLB digest and
// layers; base images are not resolved, so their layers are not counted):
//
//	go run ./examples/golib
//	go run ./examples/golib --context examples/ktrdr --opt python-version=3.12 backend-prod api-debug
//
// Build on a buildkitd and push (credentials from ~/.docker/config.json):
//
//	go run ./examples/golib --addr unix:///run/buildkit/buildkitd.sock \
//	    --registry registry.example.com/team api-debug
//
// Positional arguments name the images to plan or build (all when none).
// --context defaults to examples/ktrdr, relative to the current directory
// (run it from the repository root); any directory with a pyproject.toml
// and an up-to-date uv.lock works.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
)

// contextName is the local source the build context is sent as: the name
// in llb.Local and the key of SolveOpt.LocalMounts.
const contextName = "context"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "golib:", err)
		os.Exit(1)
	}
}

// run is the program: flags in args, the plan or the pushed digests on
// stdout, BuildKit's progress on stderr.
func run(args []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	fs := flag.NewFlagSet("golib", flag.ContinueOnError)
	dir := fs.String("context", "examples/ktrdr", "the Python/uv project: a directory with pyproject.toml and uv.lock")
	addr := fs.String("addr", "", "buildkitd address (unix:///run/buildkit/buildkitd.sock); empty: plan only, no daemon")
	registry := fs.String("registry", "", "registry/namespace the images are named under and pushed to (empty: built, not pushed)")
	var opts []string
	fs.Func("opt", "an option KEY=VALUE, as ktrdr-images --opt (repeatable)", func(s string) error {
		opts = append(opts, s)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: golib [--context DIR] [--addr ADDR] [--registry REG] [--opt KEY=VALUE]... [IMAGE]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}

	// The options: the built-in defaults, then the user's. The project's
	// settings come between the two when the graphs are made (Spec.Apply).
	o := variants.DefaultOptions()
	for _, kv := range opts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--opt %q: expected KEY=VALUE", kv)
		}
		if err := o.Set(k, v); err != nil {
			return fmt.Errorf("--opt: %w", err)
		}
	}
	if *registry != "" {
		if err := o.Set("registry", *registry); err != nil {
			return fmt.Errorf("--registry: %w", err)
		}
	}

	// The project, its lock (checked up to date with the project) and its
	// images; every error names the file at fault.
	proj, lock, err := uvlock.LoadProject(*dir)
	if err != nil {
		return err
	}
	spec, err := variants.LoadSpec(proj, lock)
	if err != nil {
		return err
	}
	set, err := imageSet(spec)
	if err != nil {
		return err
	}
	in, err := localInputs(*dir)
	if err != nil {
		return err
	}
	in.Project, in.Lock, in.Spec = proj, lock, set

	names := fs.Args()
	if len(names) == 0 {
		names = set.Names()
	}
	for _, n := range names {
		if _, err := set.Lookup(n); err != nil {
			return err
		}
	}
	if *addr == "" {
		return plan(ctx, in, o, names, stdout)
	}
	return build(ctx, *addr, *dir, in, o, names, *registry != "", stdout)
}

// imageSet is the image set this program builds, declared in Go: the
// project's images and api-debug, the project's default target with
// debug logging, Python's development mode and without the dev tools, and
// a label on every image. A team changes this function to compose its own
// images; Variant.Validate checks each as the spec reader checks a table.
func imageSet(project *variants.Spec) (*variants.Spec, error) {
	base, err := project.Lookup(project.DefaultTarget)
	if err != nil {
		return nil, err
	}
	debug := base // a copy: the slices changed below are cloned first
	debug.Name = "api-debug"
	debug.Description = base.Name + " with debug logging and Python's development mode"
	repo := base.Image
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	debug.Image = repo + ":debug"
	debug.Env = append(slices.Clone(base.Env), "PYTHONDEVMODE=1", "LOG_LEVEL=DEBUG")
	if len(base.Cmd) == 0 && slices.ContainsFunc(base.Launcher, func(s string) bool { return strings.Contains(s, "uvicorn") }) {
		debug.ExtraArgs = append(slices.Clone(base.ExtraArgs), "--log-level", "debug")
	}
	debug.Tools, debug.RunMounts = nil, nil
	if _, err := project.Lookup(debug.Name); err == nil {
		return nil, fmt.Errorf("image %s: %s already has an image of that name", debug.Name, project.Path)
	}

	set := *project // keeps the project's file and lines for its images' errors
	set.Variants = append(slices.Clone(project.Variants), debug)
	// Settings are option keys and values, as in the TOML table: the
	// project's defaults, which --opt overrides.
	set.Settings = append(slices.Clone(project.Settings), [2]string{"label.org.example.built-with", "examples/golib"})
	for _, v := range set.Variants {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("the image set: %w", err)
		}
	}
	return &set, nil
}

// localInputs describes the project directory as the local source
// contextName, with its .dockerignore applied; Exists answers for the
// paths the images copy. (The CLI also refuses symlinks that lead out of
// the context; that check is internal.)
func localInputs(dir string) (variants.Inputs, error) {
	var excludes []string
	ignore := filepath.Join(dir, ".dockerignore")
	if f, err := os.Open(ignore); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return variants.Inputs{}, fmt.Errorf("%s: %w", ignore, err)
		}
		// The dependency files must reach the build whatever it says.
		excludes = append(excludes, "!pyproject.toml", "!uv.lock")
	} else if !errors.Is(err, os.ErrNotExist) {
		return variants.Inputs{}, err
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return variants.Inputs{}, fmt.Errorf("%s: %w", ignore, err)
	}
	opts := []llb.LocalOption{llb.SharedKeyHint(contextName), llb.WithCustomName("[context] " + dir)}
	if len(excludes) > 0 {
		opts = append(opts, llb.ExcludePatterns(excludes))
	}
	return variants.Inputs{
		Context: llb.Local(contextName, opts...),
		Exists: func(rel string) (bool, error) {
			if excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel)); err != nil || excluded {
				return false, err
			}
			_, err := os.Stat(filepath.Join(dir, rel))
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return err == nil, err
		},
		ContextName: dir,
	}, nil
}

// plan prints each image's graph without a daemon: the Resolver is nil,
// so base images stay unpinned and their configs unread.
func plan(ctx context.Context, in variants.Inputs, o variants.Options, names []string, stdout io.Writer) error {
	imgs, err := variants.Graphs(ctx, in, o, names)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		def, err := img.State.Marshal(ctx, llb.Platform(img.Platform))
		if err != nil {
			return fmt.Errorf("image %s: marshaling the graph: %w", img.Variant.Name, err)
		}
		// The last op of a definition is its root: its digest names the
		// whole graph.
		root := digest.FromBytes(def.Def[len(def.Def)-1])
		var parts []string
		for _, p := range img.Parts {
			parts = append(parts, p.Name)
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%d layers on %s\n", img.Variant.Name, img.Name, platforms.Format(img.Platform), root, len(img.Parts), img.Base)
		fmt.Fprintf(stdout, "\tlayers: %s\n", strings.Join(parts, ", "))
	}
	return nil
}

// build solves each image on the buildkitd at addr with a gateway build
// function and exports it as an image named by the options (pushed when
// push is set), printing each image's digest.
func build(ctx context.Context, addr, dir string, in variants.Inputs, o variants.Options, names []string, push bool, stdout io.Writer) error {
	c, err := client.New(ctx, addr)
	if err != nil {
		return fmt.Errorf("buildkitd at %s: %w", addr, err)
	}
	defer c.Close()
	ctxFS, err := fsutil.NewFS(dir)
	if err != nil {
		return fmt.Errorf("build context %s: %w", dir, err)
	}
	// The image names: the options with the project's settings applied
	// (a spec may set registry or tag), as Graphs will apply them.
	named, err := in.Spec.Apply(o)
	if err != nil {
		return err
	}
	auth := authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(config.LoadDefaultConfigFile(os.Stderr)),
	})
	for _, n := range names {
		v, _ := in.Spec.Lookup(n) // checked by run
		ref, err := named.ImageName(v)
		if err != nil {
			return fmt.Errorf("image %s: %w", n, err)
		}
		so := client.SolveOpt{
			Exports: []client.ExportEntry{{
				Type:  client.ExporterImage,
				Attrs: map[string]string{"name": ref, "push": fmt.Sprint(push)},
			}},
			LocalMounts: map[string]fsutil.FS{contextName: ctxFS},
			Session:     []session.Attachable{auth},
		}
		dgst, err := solve(ctx, c, so, in, o, n)
		if err != nil {
			return fmt.Errorf("image %s (%s): %w", n, ref, err)
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", n, ref, dgst)
	}
	return nil
}

// solve builds one image: its graph is made inside the gateway build
// function, where the gateway client resolves the base images (pinned by
// digest, their configs merged into the image's), then solved, and the
// result carries the image config for the exporter.
func solve(ctx context.Context, c *client.Client, so client.SolveOpt, in variants.Inputs, o variants.Options, name string) (string, error) {
	display, err := progressui.NewDisplay(os.Stderr, progressui.PlainMode)
	if err != nil {
		return "", err
	}
	ch := make(chan *client.SolveStatus)
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		// A display error is a terminal's problem, not the build's.
		_, _ = display.UpdateFrom(context.WithoutCancel(ctx), ch)
	}()
	resp, err := c.Build(ctx, so, "golib", func(ctx context.Context, gw gwclient.Client) (*gwclient.Result, error) {
		in.Resolver = gw
		// A daemon without the diff and merge ops (BuildKit < v0.10) gets
		// images assembled by plain copies.
		caps := gw.BuildOpts().LLBCaps
		if caps.Supports(pb.CapDiffOp) != nil || caps.Supports(pb.CapMergeOp) != nil {
			o.Plain = true
		}
		imgs, err := variants.Graphs(ctx, in, o, []string{name})
		if err != nil {
			return nil, err
		}
		img := imgs[0]
		def, err := img.State.Marshal(ctx, llb.Platform(img.Platform))
		if err != nil {
			return nil, fmt.Errorf("marshaling the graph: %w", err)
		}
		res, err := gw.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), Evaluate: true})
		if err != nil {
			return nil, err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		cfg, err := json.Marshal(img.Config)
		if err != nil {
			return nil, fmt.Errorf("the image config: %w", err)
		}
		out := gwclient.NewResult()
		out.SetRef(ref)
		out.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		return out, nil
	}, ch)
	<-shown
	if err != nil {
		return "", err
	}
	return resp.ExporterResponse[exptypes.ExporterImageDigestKey], nil
}
