package world

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// Options configure Up.
type Options struct {
	// CacheDir holds everything the world is made of. Default:
	// $KTRDR_IMAGES_CACHE, else DefaultCacheDir (outside the checkout).
	CacheDir string
	// Log receives one line per step (what was reused, built or started,
	// and how long it took). Nil discards.
	Log io.Writer
	// RegistryAddr and IndexAddr move the registry and the index server
	// (default RegistryAddr, IndexAddr), for a second, private world on the
	// same machine (with its own CacheDir); image names follow.
	RegistryAddr, IndexAddr string
	// Arm64 asks for the linux/arm64 half: QEMU user emulation, the
	// python base for linux/arm64 and the index's aarch64 wheels. Without
	// it Up builds nothing for arm64, unless an earlier Up of this cache
	// made that half (then it is kept up, cached like the rest);
	// World.EnsureArm64 adds it later in the same process.
	Arm64 bool
}

// World is the running offline world.
type World struct {
	// BuildkitAddr is buildkitd's address, unix:///…/run/buildkitd.sock.
	BuildkitAddr string
	// Registry is the plain-HTTP registry, "127.0.0.1:5000".
	Registry string
	// PythonBase stands for python:3.13-slim:
	// "127.0.0.1:5000/library/python:3.13-slim".
	PythonBase string
	// CUDABase is the python base plus Debian's CUDA runtime libraries:
	// "127.0.0.1:5000/offline/python-cuda:3.13-trixie".
	CUDABase string
	// PythonBaseDigest and CUDABaseDigest are the manifest digests of the
	// two base images, for pinning (name@digest).
	PythonBaseDigest, CUDABaseDigest string
	// UVImage is the uv image, laid out as ghcr.io/astral-sh/uv, and
	// UVVersion its tag: "127.0.0.1:5000/astral-sh/uv", "0.9.17".
	UVImage, UVVersion string
	// IndexURL is the PEP 503 default index (the PyPI stand-in),
	// http://127.0.0.1:3141/simple. Its torch is the CUDA build, requiring
	// the nvidia-* wheels it also serves, as PyPI's.
	IndexURL string
	// CPUIndexURL serves torch X+cpu, as https://download.pytorch.org/whl/cpu.
	CPUIndexURL string
	// Wheels lists every wheel the index serves, with its sha256.
	Wheels []Wheel
	// CacheDir is the cache directory in use.
	CacheDir string
	// BuildkitdBin and BuildctlBin are the binaries built from go.mod.
	BuildkitdBin, BuildctlBin string
	// Steps reports what Up did, in order.
	Steps []Step
	// Bases reports the base images (reference, digest, sizes): the python
	// base, the CUDA base, and the python base for linux/arm64 when
	// Emulation.Arm64.
	Bases []BaseInfo
	// Emulation says whether linux/arm64 can be built and run here.
	Emulation Emulation
	// PythonBaseArm64Digest is the python base's linux/arm64 manifest
	// digest ("" without emulation); PythonBase is then an OCI index of
	// both platforms.
	PythonBaseArm64Digest string

	layout  layout
	lastLog atomic.Int64 // when logf last wrote, in Unix nanoseconds
	logMu   sync.Mutex   // logf is called from the base prebuild too
	started []*running
	users   *os.File
	logw    io.Writer
	// attached: from Attach, which never builds or starts anything.
	attached bool
}

// Step is one step of Up and what it did.
type Step struct {
	Name     string
	Outcome  string // "reused", "built", "started", ...
	Duration time.Duration
}

// BaseInfo describes a base image of the world.
type BaseInfo struct {
	Ref      string
	Digest   string
	Layers   int
	Size     int64 // compressed: the sum of the layer blobs
	Packages int   // Debian packages installed
	Python   string
}

// Reused reports whether Up reused every part of the world (built and
// started nothing).
func (w *World) Reused() bool {
	for _, s := range w.Steps {
		if s.Outcome != "reused" && s.Outcome != "running" {
			return false
		}
	}
	return true
}

func (w *World) logf(format string, args ...any) {
	w.lastLog.Store(time.Now().UnixNano())
	w.logMu.Lock()
	defer w.logMu.Unlock()
	if w.logw != nil {
		fmt.Fprintf(w.logw, "world: "+format+"\n", args...)
	}
}

func (w *World) step(name string, fn func() (string, error)) error {
	start := time.Now()
	// A step that takes minutes (mmdebstrap, the index) says it is still
	// at work when nothing was logged for 45 s (checked every 30 s), so a
	// newcomer can tell busy from stuck.
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if time.Since(time.Unix(0, w.lastLog.Load())) < 45*time.Second {
					continue // the step says what it does itself
				}
				w.logf("%-10s still at work, %s elapsed", name, time.Since(start).Round(time.Second))
			}
		}
	}()
	outcome, err := fn()
	close(stop)
	d := time.Since(start)
	if err != nil {
		w.logf("%-10s FAILED after %s", name, d.Round(10*time.Millisecond))
		return err
	}
	w.Steps = append(w.Steps, Step{Name: name, Outcome: outcome, Duration: d})
	w.logf("%-10s %s (%s)", name, outcome, d.Round(10*time.Millisecond))
	return nil
}

func newLayout(dir string, opts Options) layout {
	l := layout{root: dir, registry: opts.RegistryAddr, index: opts.IndexAddr}
	if l.registry == "" {
		l.registry = RegistryAddr
	}
	if l.index == "" {
		l.index = IndexAddr
	}
	return l
}

// resolveCacheDir applies the defaults of Options.CacheDir.
func resolveCacheDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(CacheEnv)
	}
	if dir == "" {
		dir = DefaultCacheDir
	}
	return filepath.Abs(dir)
}

// Up brings the world up: tools, services, base images and the package
// index, each reused when present and healthy, repaired or rebuilt when not.
// It is safe to call from several processes at once (they take turns).
func Up(ctx context.Context, opts Options) (_ *World, err error) {
	dir, err := resolveCacheDir(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	l := newLayout(dir, opts)
	w := &World{
		layout:       l,
		logw:         opts.Log,
		CacheDir:     dir,
		Registry:     l.registry,
		BuildkitAddr: "unix://" + l.socket(),
		BuildkitdBin: l.bin("buildkitd"),
		BuildctlBin:  l.bin("buildctl"),
		IndexURL:     "http://" + l.index + "/simple",
		CPUIndexURL:  "http://" + l.index + "/whl/cpu",
		UVImage:      l.registry + "/" + uvRepo,
		UVVersion:    UVVersion,
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the offline world needs root (buildkitd with runc and overlayfs, mmdebstrap in root mode)")
	}
	if err := l.ensure(); err != nil {
		return nil, err
	}
	lock, err := flock(l.path("up.lock"), syscall.LOCK_EX, true)
	if err != nil {
		w.logf("another process is bringing the world up in %s; waiting", dir)
		if lock, err = flock(l.path("up.lock"), syscall.LOCK_EX, false); err != nil {
			return nil, fmt.Errorf("locking %s: %w", l.path("up.lock"), err)
		}
	}
	defer lock.Close()
	defer func() {
		if err != nil {
			w.stopStarted()
		}
	}()
	total := time.Now()
	w.logf("cache directory %s", dir)
	if err := w.bringUp(ctx, opts.Arm64 || l.arm64Made()); err != nil {
		return nil, err
	}
	users, err := flock(l.path("users.lock"), syscall.LOCK_SH, false)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", l.path("users.lock"), err)
	}
	w.users = users
	w.logf("up in %s", time.Since(total).Round(10*time.Millisecond))
	return w, nil
}

// bringUp makes or reuses every part of the world, in order; with arm64
// the linux/arm64 half too. Up holds up.lock around it.
func (w *World) bringUp(ctx context.Context, arm64 bool) error {
	l := w.layout
	w.Steps, w.Bases, w.PythonBaseArm64Digest = nil, nil, ""

	var root string
	var prebuild *basePrebuild
	if err := w.step("tools", func() (string, error) {
		var err error
		if root, err = moduleRoot(); err != nil {
			return "", err
		}
		built, err := installTools(l, root, func() { prebuild = startBasePrebuild(l, w.logf) })
		if built {
			return "built", err
		}
		return "reused", err
	}); err != nil {
		return err
	}

	// QEMU is registered before buildkitd starts: a buildkitd started
	// before lists no linux/arm64 and is restarted (its health says so).
	if !arm64 {
		w.Emulation = Emulation{Why: "linux/arm64 was not asked for (make images PLATFORMS=linux/amd64,linux/arm64, ktrdr-world up -arm64, or a test that needs it brings it up)"}
		w.logf("linux/arm64: not asked for, nothing of it is built (make images PLATFORMS=linux/amd64,linux/arm64 adds it)")
	} else if err := w.step("emulation", func() (string, error) {
		var outcome string
		w.Emulation, outcome = ensureEmulation(l)
		if !w.Emulation.Arm64 {
			w.logf("emulation: linux/arm64 is not available, its parts and tests are skipped: %s", w.Emulation.Why)
			outcome += ": " + w.Emulation.Why
		}
		return outcome, nil
	}); err != nil {
		return err
	}
	reg, err := registryService(l)
	if err != nil {
		return err
	}
	bk, err := buildkitdService(l, w.Emulation.Arm64)
	if err != nil {
		return err
	}
	for _, s := range []*service{reg, bk} {
		if err := w.step(s.name, func() (string, error) { return w.ensureService(ctx, s) }); err != nil {
			return err
		}
	}

	rc := newRegistryClient(l.registry)
	var bases []*baseImage
	for _, r := range baseRecipes() {
		var parent *baseImage
		if r.Parent != "" {
			parent = bases[0]
		}
		var img *baseImage
		if err := w.step("base "+r.Name, func() (string, error) {
			made, err := prebuild.wait(r.Name)
			if err != nil {
				return "", err
			}
			var outcome string
			// With arm64, the python base's tag is an index of both
			// platforms: its amd64 image is pushed by digest.
			img, outcome, err = ensureBase(ctx, l, rc, r, parent, w.Emulation.Arm64 && r.Parent == "", w.logf)
			if made != "" && err == nil {
				outcome = made
			}
			if outcome != "reused" && err == nil {
				outcome = "built: " + outcome
			}
			return outcome, err
		}); err != nil {
			return err
		}
		bases = append(bases, img)
		w.Bases = append(w.Bases, BaseInfo{Ref: img.Ref, Digest: img.Digest, Layers: len(img.Layers), Size: img.Size(), Packages: img.Packages, Python: img.Python})
	}
	w.PythonBase, w.PythonBaseDigest = bases[0].Ref, bases[0].Digest
	w.CUDABase, w.CUDABaseDigest = bases[1].Ref, bases[1].Digest
	if w.Emulation.Arm64 {
		r := arm64Recipe()
		var img *baseImage
		if err := w.step("base "+r.Name, func() (string, error) {
			var outcome string
			var err error
			img, outcome, err = ensureBase(ctx, l, rc, r, nil, true, w.logf)
			if outcome != "reused" && err == nil {
				outcome = "built: " + outcome
			}
			return outcome, err
		}); err != nil {
			return err
		}
		w.PythonBaseArm64Digest = img.Digest
		w.Bases = append(w.Bases, BaseInfo{Ref: img.Ref + " (linux/arm64)", Digest: img.Digest, Layers: len(img.Layers), Size: img.Size(), Packages: img.Packages, Python: img.Python})
		if err := w.step("base python index", func() (string, error) {
			_, outcome, err := ensureBaseIndex(ctx, l, rc, baseRecipes()[0], []*baseImage{bases[0], img})
			return outcome, err
		}); err != nil {
			return err
		}
	}

	if err := w.step("uv image", func() (string, error) {
		dir, err := findUV(root)
		if err != nil {
			return "", err
		}
		_, outcome, err := ensureUV(ctx, l, rc, dir)
		return outcome, err
	}); err != nil {
		return err
	}

	if err := w.step("index", func() (string, error) {
		ix, outcome, err := ensureIndex(ctx, w, root)
		if err != nil {
			return "", err
		}
		w.Wheels = ix.Wheels
		return outcome, nil
	}); err != nil {
		return err
	}
	if err := w.step("index-http", func() (string, error) {
		// The private index's credentials exist before its server starts.
		if _, err := l.privateCredentials(); err != nil {
			return "", err
		}
		return w.ensureService(ctx, indexService(l))
	}); err != nil {
		return err
	}

	if w.Emulation.Arm64 {
		// Kept up from now on: a later Up without Options.Arm64 reuses it.
		if err := os.WriteFile(l.arm64Stamp(), []byte("made\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// EnsureArm64 adds the linux/arm64 half (emulation, the arm64 python base,
// the index's aarch64 wheels) to a world Up brought up without it, and
// restarts buildkitd if its workers do not list linux/arm64. Afterwards
// Emulation says whether linux/arm64 can be built here. A world from
// Attach is never changed: it fails when that half is missing.
func (w *World) EnsureArm64(ctx context.Context) error {
	if w.Emulation.Arm64 {
		return nil
	}
	if w.attached {
		return fmt.Errorf("the attached world in %s has no linux/arm64 half (%s): bring it up with ktrdr-world up -arm64", w.CacheDir, w.Emulation.Why)
	}
	lock, err := flock(w.layout.path("up.lock"), syscall.LOCK_EX, false)
	if err != nil {
		return fmt.Errorf("locking %s: %w", w.layout.path("up.lock"), err)
	}
	defer lock.Close()
	start := time.Now()
	w.logf("linux/arm64 asked for: bringing up its half")
	if err := w.bringUp(ctx, true); err != nil {
		return err
	}
	w.logf("linux/arm64 half up in %s", time.Since(start).Round(10*time.Millisecond))
	return nil
}

func (w *World) ensureService(ctx context.Context, s *service) (string, error) {
	r, err := ensureService(ctx, w.layout, s)
	if err != nil {
		return "", err
	}
	if r == nil {
		return "running", nil
	}
	w.started = append(w.started, r)
	return "started", nil
}

// Client connects to the world's buildkitd.
func (w *World) Client(ctx context.Context) (*client.Client, error) {
	c, err := client.New(ctx, w.BuildkitAddr)
	if err != nil {
		return nil, fmt.Errorf("connecting to buildkitd at %s: %w", w.BuildkitAddr, err)
	}
	return c, nil
}

// Close stops the services this process started, unless another process
// is still using the world (then they keep running, and a later Up reuses
// them).
func (w *World) Close() error {
	if w == nil {
		return nil
	}
	if w.users != nil {
		w.users.Close()
		w.users = nil
	}
	if len(w.started) == 0 {
		return nil
	}
	excl, err := flock(w.layout.path("users.lock"), syscall.LOCK_EX, true)
	if err != nil {
		w.logf("another process still uses the world: leaving buildkitd, the registry and the index running")
		w.started = nil
		return nil
	}
	defer excl.Close()
	w.stopStarted()
	return nil
}

func (w *World) stopStarted() {
	for i := len(w.started) - 1; i >= 0; i-- {
		r := w.started[i]
		w.logf("stopping %s", r.svc.name)
		r.stop()
		os.Remove(w.layout.pidFile(r.svc.name))
	}
	w.started = nil
}

// Down stops the world's services, whichever process started them, when no
// process is using the world. It is what `ktrdr-world down` runs.
func Down(opts Options) error {
	dir, err := resolveCacheDir(opts.CacheDir)
	if err != nil {
		return err
	}
	l := newLayout(dir, opts)
	excl, err := flock(l.path("users.lock"), syscall.LOCK_EX, true)
	if err != nil {
		return fmt.Errorf("the world in %s is in use by another process (a test run?): not stopping it", dir)
	}
	defer excl.Close()
	reg, err := registryService(l)
	if err != nil {
		return err
	}
	bk, err := buildkitdService(l, false)
	if err != nil {
		return err
	}
	var stopped []string
	for _, s := range []*service{indexService(l), bk, reg} {
		if pid, ours := readPID(l, s); ours {
			if err := stopPID(pid, 15*time.Second); err != nil {
				return fmt.Errorf("stopping %s (pid %d): %w", s.name, pid, err)
			}
			stopped = append(stopped, s.name)
		}
		os.Remove(l.pidFile(s.name))
	}
	if opts.Log != nil {
		if len(stopped) == 0 {
			fmt.Fprintln(opts.Log, "world: nothing was running")
		} else {
			fmt.Fprintf(opts.Log, "world: stopped %s\n", strings.Join(stopped, ", "))
		}
	}
	return nil
}
