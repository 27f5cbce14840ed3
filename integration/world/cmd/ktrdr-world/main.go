// Command ktrdr-world brings the offline world of ktrdr-images up by hand
// and leaves it running: buildkitd, the registry on 127.0.0.1:5000 with the
// two Debian-made base images, and the package index on 127.0.0.1:3141.
//
//	go run ./integration/world/cmd/ktrdr-world up      # set up what is missing, start what is stopped
//	go run ./integration/world/cmd/ktrdr-world env     # the same, then print shell exports only
//	go run ./integration/world/cmd/ktrdr-world down    # stop the services
//	go run ./integration/world/cmd/ktrdr-world lock examples/ktrdr   # uv lock against the world's index
//
// The cache directory is $KTRDR_IMAGES_CACHE (default /var/cache/ktrdr-images)
// or --cache. `serve-index` is the index server the world starts itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/sirupsen/logrus"
)

func main() {
	// BuildKit's client logs benign retries of its session content store
	// (a blob "locked" while written twice) through logrus; failures reach
	// us as errors, with the log file that explains them.
	logrus.SetOutput(io.Discard)
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ktrdr-world:", err)
		os.Exit(1)
	}
}

const usage = `usage: ktrdr-world [--cache DIR] [--registry HOST:PORT] [--index HOST:PORT] [--arm64] up|env|down
       ktrdr-world serve-index --addr ADDR --dir DIR [--private-addr ADDR --private-credentials FILE]

  up      bring the offline world up (idempotent) and leave it running;
          print what it is and how to point buildctl and pip at it;
          linux/amd64 only unless --arm64 or the arm64 parts were made before
  env     like up, but print only shell exports (eval "$(ktrdr-world env)")
  down    stop buildkitd, the registry and the index server
  lock DIR [UV-LOCK-ARGS...]
          bring the world up, run uv lock on DIR's pyproject.toml against the
          world's index (in a build step: uv needs glibc 2.39+) and write
          DIR/uv.lock; uv keeps the hashes it locked for a version the index
          still serves: after a repack changed a wheel, pass
          --refresh-package NAME --upgrade-package NAME
`

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ktrdr-world", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cache := fs.String("cache", "", "cache directory (default $"+world.CacheEnv+", else "+world.DefaultCacheDir+")")
	registry := fs.String("registry", "", "registry address (default "+world.RegistryAddr+"; another one for a second, private world)")
	index := fs.String("index", "", "index server address (default "+world.IndexAddr+")")
	arm64 := fs.Bool("arm64", false, "also bring up the linux/arm64 parts (arm64 base, arm64 wheels, QEMU emulation); once made they stay cached and come up by default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return fmt.Errorf("no command")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := world.Options{CacheDir: *cache, Log: stderr, RegistryAddr: *registry, IndexAddr: *index, Arm64: *arm64}
	switch cmd := fs.Arg(0); cmd {
	case "up", "env":
		w, err := world.Up(ctx, opts)
		if err != nil {
			return err
		}
		// Leave everything running: no Close.
		if cmd == "env" {
			printEnv(stdout, w)
		} else {
			printWorld(stdout, w)
		}
		return nil
	case "down":
		return world.Down(opts)
	case "lock":
		if fs.NArg() < 2 {
			fs.Usage()
			return fmt.Errorf("lock: expected a project directory")
		}
		dir := fs.Arg(1)
		if _, err := os.Stat(filepath.Join(dir, "pyproject.toml")); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		w, err := world.Up(ctx, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "lock: %s in %s\n", strings.Join(append([]string{w.LockCommand()}, fs.Args()[2:]...), " "), dir)
		b, err := w.Lock(ctx, dir, nil, fs.Args()[2:]...)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "uv.lock"), b, 0o644)
	case "serve-index":
		sf := flag.NewFlagSet("serve-index", flag.ContinueOnError)
		sf.SetOutput(stderr)
		addr := sf.String("addr", world.IndexAddr, "listen address")
		dir := sf.String("dir", "", "index directory")
		privateAddr := sf.String("private-addr", "", "also serve the index here, behind basic auth")
		creds := sf.String("private-credentials", "", "JSON file with the private index's username, password and token")
		if err := sf.Parse(fs.Args()[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("serve-index: --dir is required")
		}
		return world.ServeIndex(ctx, *addr, *dir, *privateAddr, *creds)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func printEnv(w io.Writer, wd *world.World) {
	fmt.Fprintf(w, "export BUILDKIT_HOST=%s\n", wd.BuildkitAddr)
	fmt.Fprintf(w, "export KTRDR_IMAGES_CACHE=%s\n", wd.CacheDir)
	fmt.Fprintf(w, "export PIP_INDEX_URL=%s\n", wd.IndexURL)
	fmt.Fprintf(w, "export PATH=%s/bin:$PATH\n", wd.CacheDir)
}

func printWorld(w io.Writer, wd *world.World) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "The offline world is up.")
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "buildkitd\t%s\t(%s)\n", wd.BuildkitAddr, wd.BuildkitdBin)
	fmt.Fprintf(tw, "registry\thttp://%s\n", wd.Registry)
	for _, b := range wd.Bases {
		fmt.Fprintf(tw, "base image\t%s\t%s, %d layer(s), %.1f MB compressed, %d Debian packages, python %s\n", b.Ref, b.Digest, b.Layers, float64(b.Size)/1e6, b.Packages, b.Python)
	}
	var size int64
	for _, wh := range wd.Wheels {
		size += wh.Size
	}
	fmt.Fprintf(tw, "index\t%s\t(PyPI stand-in; %d wheels, %.1f MB in all)\n", wd.IndexURL, len(wd.Wheels), float64(size)/1e6)
	fmt.Fprintf(tw, "CPU torch\t%s\t(download.pytorch.org/whl/cpu stand-in)\n", wd.CPUIndexURL)
	fmt.Fprintf(tw, "uv image\t%s:%s\t(ghcr.io/astral-sh/uv stand-in)\n", wd.UVImage, wd.UVVersion)
	fmt.Fprintf(tw, "cache\t%s\t(logs in %s/logs)\n", wd.CacheDir, wd.CacheDir)
	tw.Flush()
	fmt.Fprintf(w, `
Point buildctl at it:
  export BUILDKIT_HOST=%[1]s
  %[2]s debug workers
  %[2]s build --frontend gateway.v0 --opt source=IMAGE --local context=. \
      --output type=image,name=%[3]s/ktrdr/NAME:TAG,push=true

Point pip at it (on the host, or in a RUN step: buildkitd's steps share the host network):
  pip install --index-url %[4]s fastapi
  pip install --index-url %[4]s torch==2.6.0                              # CUDA build, with its nvidia-* wheels
  pip install --index-url %[4]s --extra-index-url %[5]s torch==2.6.0+cpu  # CPU build

Stop it with: go run ./integration/world/cmd/ktrdr-world down
`, wd.BuildkitAddr, wd.BuildctlBin, wd.Registry, wd.IndexURL, wd.CPUIndexURL)
}
