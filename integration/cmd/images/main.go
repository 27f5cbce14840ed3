// Command images is `make images`: it brings the offline world up (tools,
// buildkitd, registry, Debian-made base images, the local package index;
// everything cached), builds the images of the example app (KTRDR's four;
// -context examples/signals: the second app's three) with
// ktrdr-images in one invocation, probes them, pushes them to the world's
// registry and prints the table. It is the CLI's build with the options
// that point it at the offline world (its python base, uv image and local
// index; everything else the default: the uv installer, worker-gpu with CUDA
// from the nvidia-* wheels); nothing here is a second code path.
//
// -platform linux/amd64,linux/arm64 (make images PLATFORMS=...) builds each
// image for both, one index per image, every platform probed; an image
// that cannot be built for one (worker-gpu: its CUDA torch is locked for
// linux/amd64 only) gets the platforms it supports, as docker-bake.hcl's
// per-target platforms give it.
//
//	go run ./integration/cmd/images [-report FILE] [-context DIR] [-progress MODE] [-platform LIST]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/engine"
	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
)

func main() {
	report := flag.String("report", "", "also write the report as JSON to this file")
	dir := flag.String("context", "examples/ktrdr", "the app to build")
	progress := flag.String("progress", "auto", "progress output: auto, plain, tty, rawjson or quiet")
	platform := flag.String("platform", "linux/amd64", "platforms, comma-separated (linux/amd64,linux/arm64)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *report, *progress, *platform); err != nil {
		fmt.Fprintln(os.Stderr, "make images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, report, progress, platform string) error {
	plats, err := variants.ParsePlatforms("-platform", platform)
	if err != nil {
		return err
	}
	in, err := build.LocalInputs(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	arm64 := slices.Contains(plats, "linux/arm64")
	// Without linux/arm64 the world builds nothing of it and says so.
	w, err := world.Up(ctx, world.Options{Log: os.Stderr, Arm64: arm64})
	if err != nil {
		return fmt.Errorf("bringing the offline world up: %w", err)
	}
	worldTook := time.Since(start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "offline world up in %s; building every image of %s\n", worldTook, dir)
	c, err := w.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// Each app under its own namespace: 127.0.0.1:5000/ktrdr/...,
	// 127.0.0.1:5000/signals/...
	o := w.BuildOptions(filepath.Base(filepath.Clean(dir)))
	// An image gets the requested platforms it supports.
	perVariant := map[string][]string{}
	for _, v := range in.Spec.Variants {
		sup := variants.SupportedPlatforms(in, o, v)
		var keep []string
		for _, p := range plats {
			if slices.Contains(sup, p) {
				keep = append(keep, p)
			}
		}
		if len(keep) < len(plats) && len(keep) > 0 {
			fmt.Fprintf(os.Stderr, "%s: built for %s only (it supports %s)\n", v.Name, strings.Join(keep, ", "), strings.Join(sup, ", "))
			perVariant[v.Name] = keep
		}
	}
	bstart := time.Now()
	rep, err := build.Run(ctx, c, build.RunOptions{
		ContextDir: dir, Options: o, Platforms: plats, VariantPlatforms: perVariant,
		Probe: true, Push: true, Inspect: true, Progress: progress,
	})
	if rep != nil {
		fmt.Println()
		// Where a Docker engine has the images (make verify pulled them),
		// the table gives docker images' SIZE beside the registry's.
		var dockerSizes map[string]int64
		if d := (engine.Docker{}); d.NotAvailable(ctx) == nil {
			dockerSizes = d.DockerSizes(ctx, rep)
		}
		build.WriteTableDocker(os.Stdout, rep, dockerSizes)
		if err == nil {
			fmt.Printf("%d images built, probed and pushed to %s in %s (the world was up in %s)\n", len(rep.Images), o.Registry, time.Since(bstart).Round(time.Second), worldTook)
		}
		if report != "" {
			if werr := build.WriteReportFile(report, rep); werr != nil {
				return fmt.Errorf("-report: %w", werr)
			}
		}
	}
	return err
}
