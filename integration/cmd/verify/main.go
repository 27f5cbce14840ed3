// Command verify is `make verify`: the seed's own verification of the four
// images on the machine's Docker engine. It installs buildx as the docker
// CLI's plugin (in the world's cache, not ~/.docker), tries the engine's
// own builder through the frontend image, builds the images on the
// offline world's buildkitd (cached after make images) and brings them
// into the engine with docker load and docker pull, then runs the seed's
// docker images and docker run commands verbatim, the production backend's
// smoke tests and the development Compose file, printing every command,
// its output and a verdict. It exits non-zero when a check fails; DIFFERS
// verdicts are the seed's expectations that cannot hold here, each with
// its measured reason.
//
//	go run ./integration/cmd/verify [-attach] [-variant V]... [-work DIR] [-log FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/engine"
	"github.com/ktrdr/ktrdr-images/integration/world"
)

type variantList []string

func (l *variantList) String() string     { return strings.Join(*l, ",") }
func (l *variantList) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	attach := flag.Bool("attach", false, "use the offline world that is already up (make world) instead of bringing it up")
	dir := flag.String("context", "examples/ktrdr", "the app to build")
	work := flag.String("work", filepath.Join(os.TempDir(), "ktrdr-verify"), "scratch directory (docker tar, Compose copy)")
	logPath := flag.String("log", "", "write the builds' progress to this file (default: WORK/build.log)")
	var vs variantList
	flag.Var(&vs, "variant", "variant to verify (repeatable; default: all four)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, *attach, *dir, *work, *logPath, vs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "make verify:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "make verify: %d checks failed\n", failed)
		os.Exit(1)
	}
}

func run(ctx context.Context, attach bool, dir, work, logPath string, vs []string) (int, error) {
	if err := (engine.Docker{}).NotAvailable(ctx); err != nil {
		return 0, err
	}
	var w *world.World
	var err error
	if attach {
		w, err = world.Attach(ctx, world.Options{Log: os.Stderr})
	} else {
		w, err = world.Up(ctx, world.Options{Log: os.Stderr})
	}
	if err != nil {
		return 0, fmt.Errorf("the offline world: %w", err)
	}
	defer w.Close()
	d, err := engine.InstallBuildx(ctx, w.CacheDir)
	if err != nil {
		return 0, err
	}
	module, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	ctxDir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return 0, err
	}
	if logPath == "" {
		logPath = filepath.Join(work, "build.log")
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Printf("make verify: the seed's verification on this machine's Docker engine (build progress in %s)\n", logPath)
	start := time.Now()
	res, err := engine.Verify(ctx, engine.Config{
		World: w, Docker: d, ModuleDir: module, ContextDir: ctxDir, WorkDir: work,
		Out: os.Stdout, BuildLog: logf, Variants: vs,
	})
	fmt.Printf("make verify took %s\n", time.Since(start).Round(time.Second))
	if res == nil {
		return 0, err
	}
	return len(res.Failed()), err
}
