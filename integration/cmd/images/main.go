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
//	go run ./integration/cmd/images [-report FILE] [-context DIR] [-progress MODE]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/engine"
	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
)

func main() {
	report := flag.String("report", "", "also write the report as JSON to this file")
	dir := flag.String("context", "examples/ktrdr", "the app to build")
	progress := flag.String("progress", "auto", "progress output: auto, plain, tty, rawjson or quiet")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *report, *progress); err != nil {
		fmt.Fprintln(os.Stderr, "make images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, report, progress string) error {
	start := time.Now()
	w, err := world.Up(ctx, world.Options{Log: os.Stderr})
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
	bstart := time.Now()
	rep, err := build.Run(ctx, c, build.RunOptions{
		ContextDir: dir, Options: o, Probe: true, Push: true, Inspect: true, Progress: progress,
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
