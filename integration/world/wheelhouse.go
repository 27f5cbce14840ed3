package world

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

//go:embed wheelhouse/repack.py
var repackPy string

//go:embed wheelhouse/check.py
var checkPy string

//go:embed wheelhouse/prepare_cuda.py
var prepareCUDAPy string

// cudaLabel is the local version label of the CUDA torch build: Debian
// trixie's python3-torch-cuda is built against CUDA 12.4.
const (
	cudaLabel   = "cu124"
	cudaVersion = "12.4"
)

// wheelSpec is one wheel of the index: a project at the version uv.lock
// pins, made from the files of Debian packages.
type wheelSpec struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Debs    []string `json:"debs"`
	// Index is the path under the server root: simple, whl/cpu.
	Index string `json:"index"`
	// Flavour is the build stage that makes it: cpu (the python base) or
	// cuda (the CUDA base).
	Flavour string `json:"flavour"`
	// FullVersion is Version with the local label, if any (+cpu).
	FullVersion string `json:"full_version"`
	// LibsDir is where bundled shared libraries go (default NAME.libs).
	LibsDir string `json:"libs_dir,omitempty"`
	// Vendor lists Debian packages that Debian unvendored from this
	// project; their files go back under VendorDir, as upstream ships them.
	Vendor    []string `json:"vendor,omitempty"`
	VendorDir string   `json:"vendor_dir,omitempty"`
	// VersionPy is a module whose __version__ is set to FullVersion.
	VersionPy string `json:"version_py,omitempty"`
	// SkipImports are top-level modules the check does not import (they
	// need an extra the set does not have, as upstream's do).
	SkipImports  []string `json:"skip_imports,omitempty"`
	DropRequires []string `json:"drop_requires,omitempty"`
	// AddRequires are Requires-Dist lines added to the metadata (the CUDA
	// torch's nvidia-* wheels, as PyPI's torch requires them).
	AddRequires []string `json:"add_requires,omitempty"`
	// RuntimeVersion, when set, is what VersionPy reports instead of
	// FullVersion (PyPI's torch 2.6.0 says "2.6.0+cu124").
	RuntimeVersion string `json:"runtime_version,omitempty"`
	// Kind is "python" (a Python project, the default), "libs" (shared
	// libraries only, under LibDir, as NVIDIA's nvidia-*-cu12 wheels) or
	// "standin" (a wheel holding no library, marked so in its metadata).
	Kind    string `json:"kind,omitempty"`
	LibDir  string `json:"lib_dir,omitempty"`
	Summary string `json:"summary,omitempty"`
	// Alternate marks a second release of a project, served beside the
	// locked one so that a lock can move to it (`uv lock
	// --upgrade-package`): the same Debian files under another version.
	// The index's checks install the locked set and leave it out.
	Alternate bool `json:"alternate,omitempty"`
	// Arch limits the wheel to one architecture's stage ("amd64",
	// "arm64"); "" makes it in every stage of its flavour (the CPU wheels
	// are made for both; the CUDA ones exist for amd64 alone).
	Arch string `json:"arch,omitempty"`
}

// debianWheels maps each project of examples/ktrdr/uv.lock (and the build
// backend) to the Debian trixie packages it is repacked from. The version
// is the lock's; repack.py refuses a Debian package whose metadata has
// another release.
var debianWheels = []struct {
	name, version string
	debs          []string
}{
	{"alembic", "1.13.2", []string{"python3-alembic"}},
	{"annotated-types", "0.7.0", []string{"python3-annotated-types"}},
	{"anyio", "4.8.0", []string{"python3-anyio"}},
	{"black", "25.1.0", []string{"black"}},
	{"certifi", "2025.1.31", []string{"python3-certifi"}},
	{"click", "8.1.8", []string{"python3-click"}},
	{"colorama", "0.4.6", []string{"python3-colorama"}},
	{"fastapi", "0.115.11", []string{"python3-fastapi"}},
	{"filelock", "3.18.0", []string{"python3-filelock"}},
	{"fsspec", "2025.3.2", []string{"python3-fsspec"}},
	{"greenlet", "3.1.0", []string{"python3-greenlet"}},
	{"h11", "0.14.0", []string{"python3-h11"}},
	{"hatchling", "1.27.0", []string{"python3-hatchling"}},
	{"httpcore", "1.0.7", []string{"python3-httpcore"}},
	{"httpx", "0.28.1", []string{"python3-httpx"}},
	{"idna", "3.10", []string{"python3-idna"}},
	{"iniconfig", "1.1.1", []string{"python3-iniconfig"}},
	{"jinja2", "3.1.6", []string{"python3-jinja2"}},
	{"joblib", "1.4.2", []string{"python3-joblib"}},
	{"mako", "1.3.9", []string{"python3-mako"}},
	{"markupsafe", "2.1.5", []string{"python3-markupsafe"}},
	{"mpmath", "1.3.0", []string{"python3-mpmath"}},
	{"mypy", "1.15.0", []string{"python3-mypy"}},
	{"mypy-extensions", "1.0.0", []string{"python3-mypy-extensions"}},
	{"networkx", "3.2.1", []string{"python3-networkx"}},
	{"numpy", "2.2.4", []string{"python3-numpy"}},
	{"packaging", "25.0", []string{"python3-packaging"}},
	{"pandas", "2.2.3", []string{"python3-pandas", "python3-pandas-lib"}},
	{"pathspec", "0.12.1", []string{"python3-pathspec"}},
	{"platformdirs", "4.3.7", []string{"python3-platformdirs"}},
	{"pluggy", "1.5.0", []string{"python3-pluggy"}},
	{"pydantic", "2.10.6", []string{"python3-pydantic"}},
	{"pydantic-core", "2.27.2", []string{"python3-pydantic-core"}},
	{"pytest", "8.3.5", []string{"python3-pytest"}},
	{"pytest-asyncio", "0.25.1", []string{"python3-pytest-asyncio"}},
	{"python-dateutil", "2.9.0", []string{"python3-dateutil"}},
	{"python-dotenv", "1.0.1", []string{"python3-dotenv"}},
	{"pytz", "2025.2", []string{"python3-pytz"}},
	{"pyyaml", "6.0.2", []string{"python3-yaml"}},
	{"scikit-learn", "1.4.2", []string{"python3-sklearn", "python3-sklearn-lib"}},
	{"scipy", "1.15.3", []string{"python3-scipy"}},
	{"setuptools", "78.1.1", []string{"python3-setuptools"}},
	{"sniffio", "1.3.1", []string{"python3-sniffio"}},
	{"sqlalchemy", "2.0.40", []string{"python3-sqlalchemy"}},
	{"starlette", "0.46.1", []string{"python3-starlette"}},
	{"sympy", "1.13.3", []string{"python3-sympy"}},
	{"threadpoolctl", "3.1.0", []string{"python3-threadpoolctl"}},
	{"trove-classifiers", "2025.4.28.22", []string{"python3-trove-classifiers"}},
	{"typing-extensions", "4.13.2", []string{"python3-typing-extensions"}},
	{"uvicorn", "0.32.0", []string{"python3-uvicorn"}},
}

// BumpedScipy is the second scipy release the index serves: Debian's
// scipy 1.15.3 repacked under a post-release number, so that a lock can be
// bumped (uv lock --upgrade-package scipy) to a real other wheel of a
// heavy package without the index needing a second Debian release.
const BumpedScipy = "1.15.3.post1"

// torchVersion is the torch release Debian trixie ships, in both flavours.
const torchVersion = "2.6.0"

// nvidiaWheels are the nvidia-*-cu12 wheels PyPI's torch 2.6.0 requires on
// linux x86_64, repacked from Debian trixie's CUDA 12.4 runtime (non-free,
// contrib for NCCL): the libraries where NVIDIA's wheels put them
// (site-packages/nvidia/<lib>/lib/), at the upstream version Debian packages
// (the same as PyPI's torch pins, but NCCL: Debian has 2.22.3, PyPI's torch
// 2.6.0 pins 2.21.5). Left out, because Debian's torch does not link them:
// nvidia-cusparselt-cu12 (cuSPARSELt is not in Debian) and triton.
var nvidiaWheels = []struct {
	name, version, dir string
	debs, requires     []string
}{
	{"nvidia-cublas-cu12", "12.4.5.8", "cublas", []string{"libcublas12", "libcublaslt12"}, nil},
	{"nvidia-cuda-cupti-cu12", "12.4.127", "cuda_cupti", []string{"libcupti12"}, nil},
	{"nvidia-cuda-nvrtc-cu12", "12.4.127", "cuda_nvrtc", []string{"libnvrtc12", "libnvrtc-builtins12.4"}, nil},
	{"nvidia-cuda-runtime-cu12", "12.4.127", "cuda_runtime", []string{"libcudart12"}, nil},
	{"nvidia-cufft-cu12", "11.2.1.3", "cufft", []string{"libcufft11"}, nil},
	{"nvidia-curand-cu12", "10.3.5.147", "curand", []string{"libcurand10"}, nil},
	{"nvidia-cusolver-cu12", "11.6.1.9", "cusolver", []string{"libcusolver11"},
		[]string{"nvidia-cublas-cu12", "nvidia-cusparse-cu12", "nvidia-nvjitlink-cu12"}},
	{"nvidia-cusparse-cu12", "12.3.1.170", "cusparse", []string{"libcusparse12"}, []string{"nvidia-nvjitlink-cu12"}},
	{"nvidia-nccl-cu12", "2.22.3", "nccl", []string{"libnccl2"}, nil},
	{"nvidia-nvjitlink-cu12", "12.4.127", "nvjitlink", []string{"libnvjitlink12"}, nil},
	{"nvidia-nvtx-cu12", "12.4.127", "nvtx", []string{"libnvtoolsext1"}, nil},
}

// cudnnStandIn is the one nvidia-* wheel that cannot be made here: cuDNN
// is not in Debian's archive (its nvidia-cudnn package downloads it from
// NVIDIA at install time). The wheel has cuDNN's name and the version
// PyPI's torch 2.6.0 pins, and no library; its Summary and STAND-IN.txt
// say so, and torch's CUDA build cannot be imported where it is installed.
var cudnnStandIn = struct{ name, version, dir, summary string }{
	"nvidia-cudnn-cu12", "9.1.0.70", "cudnn",
	"STAND-IN, not NVIDIA's cuDNN: ktrdr-images' offline world cannot obtain cuDNN (Debian does not ship it), " +
		"so this wheel holds no library and torch's CUDA build cannot be imported where it is installed",
}

// cudaMarker is the marker PyPI's torch puts on its nvidia-* requirements.
const cudaMarker = `platform_system == "Linux" and platform_machine == "x86_64"`

// setuptoolsVendored are the Debian packages of what upstream setuptools
// vendors under setuptools/_vendor and Debian's python3-setuptools uses from
// the system instead (import setuptools needs jaraco.text, for one).
var setuptoolsVendored = []string{
	"python3-autocommand", "python3-importlib-metadata", "python3-inflect", "python3-jaraco.context",
	"python3-jaraco.functools", "python3-jaraco.text", "python3-more-itertools", "python3-packaging",
	"python3-platformdirs", "python3-typeguard", "python3-typing-extensions", "python3-wheel", "python3-zipp",
}

func wheelSpecs() []wheelSpec {
	var out []wheelSpec
	for _, w := range debianWheels {
		ws := wheelSpec{Name: w.name, Version: w.version, FullVersion: w.version, Debs: w.debs, Index: "simple", Flavour: "cpu"}
		switch w.name {
		case "setuptools":
			ws.Vendor, ws.VendorDir = setuptoolsVendored, "setuptools/_vendor"
		case "black":
			ws.SkipImports = []string{"blackd"} // needs the d extra (aiohttp)
		}
		out = append(out, ws)
	}
	// scipy, a heavy package of the ml extra, in a second release: what
	// the benchmark's big_bump scenario moves the lock to.
	out = append(out, wheelSpec{Name: "scipy", Version: "1.15.3", FullVersion: BumpedScipy, Debs: []string{"python3-scipy"}, Index: "simple", Flavour: "cpu", Alternate: true})
	// The CUDA torch is on the default index as PyPI's torch is: version
	// 2.6.0 with no local label, requiring the nvidia-* wheels on linux
	// x86_64, its libraries finding theirs by rpath. The CPU build is on
	// the CPU index as 2.6.0+cpu, requiring none.
	var cudaRequires []string
	for _, nw := range nvidiaWheels {
		cudaRequires = append(cudaRequires, nw.name+"=="+nw.version+"; "+cudaMarker)
		out = append(out, wheelSpec{Name: nw.name, Version: nw.version, FullVersion: nw.version, Debs: nw.debs,
			Index: "simple", Flavour: "cuda", Kind: "libs", LibDir: "nvidia/" + nw.dir + "/lib", AddRequires: append([]string(nil), nw.requires...),
			Summary: "NVIDIA CUDA " + nw.dir + " libraries from Debian trixie's " + strings.Join(nw.debs, ", ") + ", repacked as NVIDIA's wheel (ktrdr-images offline world)"})
	}
	cudaRequires = append(cudaRequires, cudnnStandIn.name+"=="+cudnnStandIn.version+"; "+cudaMarker)
	sort.Strings(cudaRequires)
	out = append(out,
		wheelSpec{Name: cudnnStandIn.name, Version: cudnnStandIn.version, FullVersion: cudnnStandIn.version,
			Index: "simple", Flavour: "cuda", Kind: "standin", LibDir: "nvidia/" + cudnnStandIn.dir + "/lib",
			AddRequires: []string{"nvidia-cublas-cu12"}, Summary: cudnnStandIn.summary},
		wheelSpec{Name: "torch", Version: torchVersion, FullVersion: torchVersion + "+cpu", Debs: []string{"python3-torch"},
			Index: "whl/cpu", Flavour: "cpu", LibsDir: "torch/lib", VersionPy: "torch/version.py"},
		wheelSpec{Name: "torch", Version: torchVersion, FullVersion: torchVersion, Debs: []string{"python3-torch-cuda"},
			Index: "simple", Flavour: "cuda", LibsDir: "torch/lib", VersionPy: "torch/version.py",
			RuntimeVersion: torchVersion + "+" + cudaLabel, AddRequires: cudaRequires},
	)
	// On linux/arm64 PyPI's torch 2.6.0 is a CPU build under the plain
	// version, with the same metadata (its nvidia-* requirements are for
	// x86_64 alone): Debian's arm64 python3-torch, on the default index
	// beside the x86_64 CUDA build. It is a second torch of the arm64
	// stage, so the check leaves it out of the locked set (Alternate) as
	// it does the bumped scipy.
	out = append(out, wheelSpec{Name: "torch", Version: torchVersion, FullVersion: torchVersion, Debs: []string{"python3-torch"},
		Index: "simple", Flavour: "cpu", LibsDir: "torch/lib", VersionPy: "torch/version.py", AddRequires: cudaRequires,
		Alternate: true, Arch: "arm64"})
	return out
}

type indexSpec struct {
	SDE        int64       `json:"sde"`
	PythonTag  string      `json:"python_tag"`
	Wheels     []wheelSpec `json:"wheels"`
	CUDAUnpack []string    `json:"cuda_unpack"`
}

// indexScriptVersion changes whenever the wheelhouse graph changes.
const indexScriptVersion = 8

// Wheel is one file the index serves.
type Wheel struct {
	Name    string `json:"name"`    // project name
	Version string `json:"version"` // with its local label, if any
	Index   string `json:"index"`   // simple, whl/cpu
	File    string `json:"file"`    // path under the server root
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

type indexStamp struct {
	Key    string  `json:"key"`
	Wheels []Wheel `json:"wheels"`
}

// ensureIndex makes the wheelhouse (BuildKit graphs from the base images)
// and the PEP 503 pages, unless the cached ones match the inputs and are
// intact. The linux/amd64 wheels are one part (index/KEY); with
// emulation the aarch64 wheels are a second part (index-arm64/KEY), made
// only when linux/arm64 is asked for, and the served directory is then
// both parts linked into one (index/KEY-ARMKEY) with pages for all.
// index/current names the served directory.
func ensureIndex(ctx context.Context, w *World, root string) (*indexStamp, string, error) {
	l := w.layout
	spec := indexSpec{SDE: sourceDateEpoch(), PythonTag: "cp313", Wheels: wheelSpecs(), CUDAUnpack: []string{"libtorch-cuda-2.6", "libcupti12"}}
	k := key(spec, repackPy, checkPy, prepareCUDAPy, w.PythonBaseDigest, w.CUDABaseDigest, "", indexScriptVersion)
	amd, outcome, err := ensureIndexPart(ctx, w, spec, "index", l.path("index", k), k, false)
	if err != nil {
		return nil, "", err
	}
	served, keep := amd, []string{k}
	if w.PythonBaseArm64Digest != "" {
		ka := key(spec, repackPy, checkPy, w.PythonBaseDigest, w.PythonBaseArm64Digest, indexScriptVersion)
		arm, armOutcome, err := ensureIndexPart(ctx, w, spec, "index-arm64", l.path("index-arm64", ka), ka, true)
		if err != nil {
			return nil, "", err
		}
		if armOutcome != "reused" {
			outcome = "built"
		}
		both := k + "-" + ka[:16]
		served, err = ensureIndexUnion(l.path("index", both), both, amd, arm)
		if err != nil {
			return nil, "", failed("linking the amd64 and arm64 wheels into one index", l.logFile("index"), err)
		}
		keep = append(keep, both)
		removeOthers(l.path("index-arm64"), ka)
	}
	if target, _ := os.Readlink(l.path("index", "current")); target != filepath.Base(served.dir) {
		if err := relink(l.path("index", "current"), filepath.Base(served.dir)); err != nil {
			return nil, "", err
		}
	}
	// Older wheelhouses are of no use any more.
	removeOthers(l.path("index"), keep...)
	return &served.indexStamp, outcome, nil
}

// indexPart is a wheelhouse directory and its stamp.
type indexPart struct {
	indexStamp
	dir string
}

// ensureIndexPart makes one part of the index in dir (wheels, check
// reports, pages), reusing it when its stamp has key k and its wheels are
// intact.
func ensureIndexPart(ctx context.Context, w *World, spec indexSpec, name, dir, k string, arm64 bool) (*indexPart, string, error) {
	l := w.layout
	var st indexStamp
	if readJSON(filepath.Join(dir, "index.json"), &st) == nil && st.Key == k && wheelsIntact(dir, st.Wheels, !arm64) {
		return &indexPart{st, dir}, "reused", nil
	}
	logPath := l.logFile(name)
	os.Remove(logPath)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, "", err
	}
	start := time.Now()
	what := "the wheelhouse"
	if arm64 {
		what = "the aarch64 wheels"
	}
	w.logf("index: building %s on buildkitd (log %s)", what, logPath)
	def, err := wheelhouseGraph(ctx, w, spec, arm64)
	if err == nil {
		err = solveWheelhouse(ctx, w, def, k, tmp, logPath, l.path(name+"-buildcache"))
	}
	if err != nil {
		return nil, "", failed("building the package index (Debian packages repacked as wheels on buildkitd)", logPath, err)
	}
	w.logf("index: %s built in %s", what, time.Since(start).Round(time.Second))
	wheels, err := writePages(tmp)
	if err != nil {
		return nil, "", failed("writing the index pages", logPath, err)
	}
	st = indexStamp{Key: k, Wheels: wheels}
	if err := writeJSON(filepath.Join(tmp, "index.json"), st); err != nil {
		return nil, "", err
	}
	if err := swapDir(tmp, dir); err != nil {
		return nil, "", err
	}
	return &indexPart{st, dir}, "built", nil
}

// ensureIndexUnion links the wheels and check reports of parts into dir
// (hard links: no copy) and writes the pages for all of them.
func ensureIndexUnion(dir, k string, parts ...*indexPart) (*indexPart, error) {
	var st indexStamp
	if readJSON(filepath.Join(dir, "index.json"), &st) == nil && st.Key == k && wheelsIntact(dir, st.Wheels, true) {
		return &indexPart{st, dir}, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	for _, p := range parts {
		err := filepath.Walk(p.dir, func(src string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(p.dir, src)
			if !strings.HasSuffix(rel, ".whl") && !strings.HasPrefix(rel, "checks/") {
				return nil // pages and the stamp are written for the union
			}
			dst := filepath.Join(tmp, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.Link(src, dst)
		})
		if err != nil {
			return nil, err
		}
	}
	wheels, err := writePages(tmp)
	if err != nil {
		return nil, err
	}
	st = indexStamp{Key: k, Wheels: wheels}
	if err := writeJSON(filepath.Join(tmp, "index.json"), st); err != nil {
		return nil, err
	}
	if err := swapDir(tmp, dir); err != nil {
		return nil, err
	}
	return &indexPart{st, dir}, nil
}

// swapDir moves tmp to dir. The old directory (a broken one being
// repaired) is moved aside first, so a served index is never missing for
// long.
func swapDir(tmp, dir string) error {
	old := dir + ".old"
	os.RemoveAll(old)
	os.Rename(dir, old)
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// removeOthers removes every directory under parent but keep.
func removeOthers(parent string, keep ...string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(keep, e.Name()) {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

func relink(link, target string) error {
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// wheelsIntact reports whether every wheel of the stamp is in dir with its
// size, and (pages) the index's main pages are there.
func wheelsIntact(dir string, wheels []Wheel, pages bool) bool {
	if len(wheels) == 0 {
		return false
	}
	for _, wh := range wheels {
		st, err := os.Stat(filepath.Join(dir, wh.File))
		if err != nil || st.Size() != wh.Size {
			return false
		}
	}
	if !pages {
		return true
	}
	for _, page := range []string{"simple/index.html", "simple/torch/index.html", "simple/torch/" + SimpleJSONFile, "whl/cpu/torch/index.html"} {
		if _, err := os.Stat(filepath.Join(dir, page)); err != nil {
			return false
		}
	}
	return true
}

// solveWheelhouse builds and checks the wheels on buildkitd and exports
// them to out.
func solveWheelhouse(ctx context.Context, w *World, def *llb.Definition, k, out, logPath, cacheDir string) error {
	c, err := w.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	// The result is also kept as a BuildKit cache in the cache directory,
	// so that rebuilding the index (a repair) does not depend on buildkitd's
	// own cache, which GC or a prune may have emptied. It is imported when
	// it was made for the same inputs, exported anew otherwise.
	keyFile := filepath.Join(cacheDir, "ktrdr-world.key")
	opt := client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}}}
	if b, err := os.ReadFile(keyFile); err == nil && string(b) == k {
		opt.CacheImports = []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": cacheDir}}}
		return solve(ctx, c, def, opt, lf, w.logf)
	}
	os.RemoveAll(cacheDir + ".new")
	opt.CacheExports = []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{
		"dest": cacheDir + ".new", "mode": "min", "compression": "zstd",
	}}}
	if err := solve(ctx, c, def, opt, lf, w.logf); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cacheDir+".new", "ktrdr-world.key"), []byte(k), 0o644); err != nil {
		return err
	}
	os.RemoveAll(cacheDir)
	return os.Rename(cacheDir+".new", cacheDir)
}

// solve runs a definition with plain progress written to log, and a
// summary of it through logf as it goes (see progressSummary).
func solve(ctx context.Context, c *client.Client, def *llb.Definition, opt client.SolveOpt, log io.Writer, logf func(string, ...any)) error {
	ch := make(chan *client.SolveStatus)
	display, err := newPlainDisplay(log)
	if err != nil {
		return err
	}
	summary := make(chan *client.SolveStatus)
	done := make(chan struct{}, 2)
	go func() {
		display(summary)
		done <- struct{}{}
	}()
	go func() {
		progressSummary(ch, summary, logf, 30*time.Second)
		done <- struct{}{}
	}()
	_, err = c.Solve(ctx, def, opt, ch)
	<-done
	<-done
	return err
}

// progressSummary forwards every status from in to out and tells logf, as
// the solve goes, what a newcomer needs to tell busy from stuck: each step
// as it starts and ends ("step 3/9 done in 41s: repack the CPU wheels"),
// the steps' own progress lines that start with "repack:" or "check:"
// ("repack: 12/51 numpy ..."), and at least every interval which steps are
// still running and for how long.
func progressSummary(in <-chan *client.SolveStatus, out chan<- *client.SolveStatus, logf func(string, ...any), interval time.Duration) {
	defer close(out)
	type vtx struct {
		name    string
		started time.Time
		done    bool
		cached  bool
	}
	vs := map[digest.Digest]*vtx{}
	var order []digest.Digest
	partial := map[digest.Digest]string{}
	start := time.Now()
	last := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	counts := func() (int, int) {
		n := 0
		for _, v := range vs {
			if v.done {
				n++
			}
		}
		return n, len(vs)
	}
	for {
		select {
		case st, ok := <-in:
			if !ok {
				return
			}
			for _, v := range st.Vertexes {
				x := vs[v.Digest]
				if x == nil {
					x = &vtx{name: v.Name}
					vs[v.Digest] = x
					order = append(order, v.Digest)
				}
				if v.Started != nil && x.started.IsZero() && !v.Cached {
					x.started = *v.Started
					n, total := counts()
					logf("index: step %d/%d started: %s", n+1, total, x.name)
					last = time.Now()
				}
				if v.Completed != nil && !x.done {
					x.done, x.cached = true, v.Cached
					n, total := counts()
					switch {
					case v.Error != "":
						logf("index: step %d/%d FAILED: %s: %s", n, total, x.name, v.Error)
					case !v.Cached && !x.started.IsZero():
						logf("index: step %d/%d done in %s: %s", n, total, v.Completed.Sub(x.started).Round(time.Second), x.name)
					}
					last = time.Now()
				}
			}
			for _, l := range st.Logs {
				text := partial[l.Vertex] + string(l.Data)
				lines := strings.Split(text, "\n")
				partial[l.Vertex] = lines[len(lines)-1]
				for _, line := range lines[:len(lines)-1] {
					if strings.HasPrefix(line, "repack: ") || strings.HasPrefix(line, "check: ") {
						logf("index: %s", line)
						last = time.Now()
					}
				}
			}
			out <- st
		case <-tick.C:
			if time.Since(last) < interval {
				continue
			}
			var running []string
			for _, d := range order {
				if x := vs[d]; !x.started.IsZero() && !x.done {
					running = append(running, fmt.Sprintf("%s (%s)", x.name, time.Since(x.started).Round(time.Second)))
				}
			}
			n, total := counts()
			if len(running) == 0 {
				running = []string{"waiting for buildkitd"}
			}
			logf("index: %s elapsed, %d/%d steps done; running: %s", time.Since(start).Round(time.Second), n, total, strings.Join(running, "; "))
			last = time.Now()
		}
	}
}

// newPlainDisplay returns a function that writes BuildKit's plain progress
// of a status channel to log until the channel closes.
func newPlainDisplay(log io.Writer) (func(chan *client.SolveStatus), error) {
	d, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil {
		return nil, err
	}
	return func(ch chan *client.SolveStatus) { d.UpdateFrom(context.Background(), ch) }, nil
}

// noByteCompile diverts Debian's py3compile to true before apt installs
// the packages to repack: their maintainer scripts then write no .pyc files,
// which repack.py leaves out of every wheel anyway. Under QEMU (arm64) the
// byte-compilation of torch, scipy and the rest was most of the step.
const noByteCompile = "for c in py3compile pypy3compile; do dpkg-divert --local --quiet --rename --add /usr/bin/$c; ln -sf /bin/true /usr/bin/$c; done; "

var (
	platform      = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	platformArm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64"}
)

// wheelhouseGraph is the LLB graph of the index:
//
//	python base ─► apt-get install the Debian packages ─► repack.py (cpu) ─► /out ─┐
//	python base (bare, no network) ◄── check.py cpu ◄────────────────────────────────┤
//	CUDA base ─► prepare-cuda ─► repack.py (cuda: nvidia-*, torch) ─► /out ─────────┤─► merge ─► export
//	python base (bare, no network) ◄── check.py cuda ◄───────────────────────────────┘
//
// With arm64 it is the graph of the aarch64 part alone (see below).
func wheelhouseGraph(ctx context.Context, w *World, spec indexSpec, arm64 bool) (*llb.Definition, error) {
	specJSON, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		return nil, err
	}
	sde := fmt.Sprint(spec.SDE)
	pyBase := llb.Image(w.PythonBase+"@"+w.PythonBaseDigest, llb.Platform(platform), llb.WithCustomName("python base "+w.PythonBase))
	cudaBase := llb.Image(w.CUDABase+"@"+w.CUDABaseDigest, llb.Platform(platform), llb.WithCustomName("CUDA base "+w.CUDABase))
	// One mount per script, so that changing one does not invalidate the
	// steps that do not run it (the apt installs above all).
	script := func(name, content string, extra ...llb.StateOption) llb.State {
		st := llb.Scratch().File(llb.Mkfile("/"+name, 0o755, []byte(content)), llb.WithCustomName(name))
		for _, o := range extra {
			st = o(st)
		}
		return st
	}
	repack := script("repack.py", repackPy, func(st llb.State) llb.State {
		return st.File(llb.Mkfile("/spec.json", 0o644, specJSON), llb.WithCustomName("spec.json"))
	})
	check := script("check.py", checkPy)
	prepare := script("prepare_cuda.py", prepareCUDAPy)

	var debs, cudaDebs []string
	for _, ws := range spec.Wheels {
		if ws.Flavour == "cpu" {
			debs = append(debs, ws.Debs...)
			debs = append(debs, ws.Vendor...)
		} else {
			cudaDebs = append(cudaDebs, ws.Debs...)
		}
	}
	sort.Strings(debs)
	debs = slices.Compact(debs)
	cudaDebs = append(cudaDebs, spec.CUDAUnpack...)
	env := []llb.RunOption{
		llb.AddEnv("DEBIAN_FRONTEND", "noninteractive"),
		llb.AddEnv("SOURCE_DATE_EPOCH", sde),
		llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
	}
	// /tmp is a tmpfs in every step: the checks' venvs (4 GB for the CUDA
	// one) and the repack's staging would otherwise stay in BuildKit's
	// cache as part of each step's result, which nothing reads.
	run := func(st llb.State, name string, net bool, args []string, opts ...llb.RunOption) llb.ExecState {
		o := append([]llb.RunOption{llb.Args(args), llb.WithCustomName(name), llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs())}, env...)
		if !net {
			o = append(o, llb.Network(llb.NetModeNone))
		}
		return st.Run(append(o, opts...)...)
	}

	if arm64 {
		if w.PythonBaseArm64Digest == "" {
			return nil, fmt.Errorf("the aarch64 wheels need the python base for linux/arm64")
		}
		// linux/arm64: the same CPU wheels from Debian's arm64 packages,
		// under QEMU (apt's maintainer scripts, ldd and patchelf must run
		// on the target), checked in the bare arm64 base.
		armBase := llb.Image(w.PythonBase+"@"+w.PythonBaseArm64Digest, llb.Platform(platformArm64), llb.WithCustomName("python base "+w.PythonBase+" (linux/arm64)"))
		armInstalled := run(armBase, "[linux/arm64] install the Debian packages to repack ("+fmt.Sprint(len(debs))+"), emulated", true, []string{"/bin/sh", "-c",
			"set -e; " + noByteCompile + "apt-get update; apt-get install -y --no-install-recommends patchelf " + strings.Join(debs, " ") + "; rm -rf /var/lib/apt/lists/*"}).Root()
		armWheels := run(armInstalled, "[linux/arm64] repack the CPU wheels, emulated", false, []string{"python3", "/repack/repack.py", "build",
			"--spec", "/repack/spec.json", "--flavour", "cpu", "--arch", "arm64", "--base", "/base", "--out", "/out"},
			llb.AddMount("/repack", repack, llb.Readonly), llb.AddMount("/base", armBase, llb.Readonly)).AddMount("/out", llb.Scratch())
		// The check unpacks them natively (pip --platform --target, as our
		// builds install for arm64) and emulates only the venv, pip check
		// and the imports: unpacking torch under QEMU took 13.8 minutes.
		armSite := run(pyBase, "[linux/arm64] unpack the CPU wheels for aarch64, natively", false, []string{"python3", "/check/check.py", "unpack",
			"--wheels", "/wheels", "--platform", "linux_aarch64", "--target", "/site", "--report", "/tmp/unpack.txt"},
			llb.AddMount("/check", check, llb.Readonly), llb.AddMount("/wheels", armWheels, llb.Readonly)).AddMount("/site", llb.Scratch())
		armCheck := run(armBase, "[linux/arm64] check the CPU wheels in the bare python base, no network, emulated", false, []string{"python3", "/check/check.py", "cpu",
			"--wheels", "/wheels", "--site", "/site", "--report", "/report/checks/cpu-arm64.txt"},
			llb.AddMount("/check", check, llb.Readonly), llb.AddMount("/wheels", armWheels, llb.Readonly),
			llb.AddMount("/site", armSite, llb.Readonly)).AddMount("/report", llb.Scratch())
		return llb.Merge([]llb.State{armWheels, armCheck}, llb.WithCustomName("the aarch64 wheels")).Marshal(ctx, llb.Platform(platform))
	}

	cpuInstalled := run(pyBase, "install the Debian packages to repack ("+fmt.Sprint(len(debs))+")", true, []string{"/bin/sh", "-c",
		"set -e; " + noByteCompile + "apt-get update; apt-get install -y --no-install-recommends patchelf " + strings.Join(debs, " ") + "; rm -rf /var/lib/apt/lists/*"}).Root()
	cpuWheels := run(cpuInstalled, "repack the CPU wheels", false, []string{"python3", "/repack/repack.py", "build",
		"--spec", "/repack/spec.json", "--flavour", "cpu", "--base", "/base", "--out", "/out"},
		llb.AddMount("/repack", repack, llb.Readonly), llb.AddMount("/base", pyBase, llb.Readonly)).AddMount("/out", llb.Scratch())
	cpuCheck := run(pyBase, "check the CPU wheels in the bare python base, no network", false, []string{"python3", "/check/check.py", "cpu",
		"--wheels", "/wheels", "--report", "/report/checks/cpu.txt"},
		llb.AddMount("/check", check, llb.Readonly), llb.AddMount("/wheels", cpuWheels, llb.Readonly)).AddMount("/report", llb.Scratch())

	cudaInstalled := run(cudaBase, "install python3-torch-cuda's libraries, unpack it", true,
		append([]string{"python3", "/prepare/prepare_cuda.py"}, cudaDebs...), llb.AddMount("/prepare", prepare, llb.Readonly)).Root()
	// The CUDA stage runs in the CUDA base, where Debian's CUDA runtime is
	// installed, but decides what to bundle against the bare python base:
	// the CUDA libraries go into the nvidia-* wheels, torch finds them there
	// by rpath, and only what neither has is bundled into torch/lib.
	cudaWheels := run(cudaInstalled, "repack the nvidia-* wheels and the CUDA torch", false, []string{"python3", "/repack/repack.py", "build",
		"--spec", "/repack/spec.json", "--flavour", "cuda", "--base", "/base", "--out", "/out"},
		llb.AddMount("/repack", repack, llb.Readonly), llb.AddMount("/base", pyBase, llb.Readonly)).AddMount("/out", llb.Scratch())
	cudaCheck := run(pyBase, "check the CUDA torch and nvidia-* wheels in the bare python base, no network", false, []string{"python3", "/check/check.py", "cuda",
		"--wheels", "/wheels", "--deps", "/deps", "--cuda-version", cudaVersion, "--report", "/report/checks/cuda.txt"},
		llb.AddMount("/check", check, llb.Readonly), llb.AddMount("/wheels", cudaWheels, llb.Readonly), llb.AddMount("/deps", cpuWheels, llb.Readonly)).AddMount("/report", llb.Scratch())

	parts := []llb.State{cpuWheels, cudaWheels, cpuCheck, cudaCheck}
	all := llb.Merge(parts, llb.WithCustomName("the index"))
	return all.Marshal(ctx, llb.Platform(platform))
}

// SimpleJSONFile is the PEP 691 JSON form of a project page, next to its
// index.html; the index server answers with it when the client asks for
// application/vnd.pypi.simple.v1+json (uv does).
const SimpleJSONFile = "simple.v1.json"

type simpleJSON struct {
	Meta     map[string]string `json:"meta"`
	Name     string            `json:"name"`
	Files    []simpleFile      `json:"files"`
	Versions []string          `json:"versions"`
}

type simpleFile struct {
	Filename string            `json:"filename"`
	URL      string            `json:"url"`
	Hashes   map[string]string `json:"hashes"`
	Size     int64             `json:"size"`
}

var projectRe = regexp.MustCompile(`[-_.]+`)

func normalize(name string) string { return strings.ToLower(projectRe.ReplaceAllString(name, "-")) }

// writePages hashes every wheel under dir (INDEX/PROJECT/FILE.whl) and
// writes the PEP 503 pages: INDEX/index.html and INDEX/PROJECT/index.html,
// each link carrying #sha256=.
func writePages(dir string) ([]Wheel, error) {
	var wheels []Wheel
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".whl") {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		parts := strings.Split(rel, "/")
		if len(parts) < 3 {
			return fmt.Errorf("wheel %s is not under INDEX/PROJECT/", rel)
		}
		sum, err := sha256File(p)
		if err != nil {
			return err
		}
		fields := strings.SplitN(strings.TrimSuffix(parts[len(parts)-1], ".whl"), "-", 3)
		wheels = append(wheels, Wheel{
			Name:    parts[len(parts)-2],
			Version: fields[1],
			Index:   strings.Join(parts[:len(parts)-2], "/"),
			File:    rel,
			SHA256:  sum,
			Size:    info.Size(),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(wheels) == 0 {
		return nil, fmt.Errorf("no wheels in %s", dir)
	}
	sort.Slice(wheels, func(i, j int) bool { return wheels[i].File < wheels[j].File })
	projects := map[string]map[string][]Wheel{} // index -> project -> wheels
	for _, wh := range wheels {
		if projects[wh.Index] == nil {
			projects[wh.Index] = map[string][]Wheel{}
		}
		projects[wh.Index][wh.Name] = append(projects[wh.Index][wh.Name], wh)
	}
	for index, byProject := range projects {
		var names []string
		for name, ws := range byProject {
			names = append(names, name)
			var b strings.Builder
			fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for %s</title></head><body>\n<h1>Links for %s</h1>\n", html.EscapeString(name), html.EscapeString(name))
			for _, wh := range ws {
				file := filepath.Base(wh.File)
				fmt.Fprintf(&b, "<a href=\"%s#sha256=%s\">%s</a><br>\n", html.EscapeString(file), wh.SHA256, html.EscapeString(file))
			}
			b.WriteString("</body></html>\n")
			if err := os.WriteFile(filepath.Join(dir, index, name, "index.html"), []byte(b.String()), 0o644); err != nil {
				return nil, err
			}
			// The same page in PEP 691's JSON form, with each file's
			// size, which uv records in the lock (from the HTML form it
			// cannot know sizes), as it does for PyPI's files.
			page := simpleJSON{Name: name, Meta: map[string]string{"api-version": "1.1"}}
			seen := map[string]bool{}
			for _, wh := range ws {
				page.Files = append(page.Files, simpleFile{Filename: filepath.Base(wh.File), URL: filepath.Base(wh.File),
					Hashes: map[string]string{"sha256": wh.SHA256}, Size: wh.Size})
				if !seen[wh.Version] {
					seen[wh.Version] = true
					page.Versions = append(page.Versions, wh.Version)
				}
			}
			jb, err := json.MarshalIndent(page, "", " ")
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, index, name, SimpleJSONFile), jb, 0o644); err != nil {
				return nil, err
			}
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Simple index</title></head><body>\n")
		for _, n := range names {
			fmt.Fprintf(&b, "<a href=\"%s/\">%s</a><br>\n", n, n)
		}
		b.WriteString("</body></html>\n")
		if err := os.WriteFile(filepath.Join(dir, index, "index.html"), []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	return wheels, nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
