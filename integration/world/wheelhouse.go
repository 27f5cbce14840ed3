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
	// Index is the path under the server root: simple, whl/cpu, whl/cu124.
	Index string `json:"index"`
	// Flavour is the build stage that makes it: cpu (the python base) or
	// cuda (the CUDA base).
	Flavour string `json:"flavour"`
	// FullVersion is Version with the local label (+cpu, +cu124).
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

// torchVersion is the torch release Debian trixie ships, in both flavours.
const torchVersion = "2.6.0"

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
	out = append(out,
		wheelSpec{Name: "torch", Version: torchVersion, FullVersion: torchVersion + "+cpu", Debs: []string{"python3-torch"},
			Index: "whl/cpu", Flavour: "cpu", LibsDir: "torch/lib", VersionPy: "torch/version.py"},
		wheelSpec{Name: "torch", Version: torchVersion, FullVersion: torchVersion + "+" + cudaLabel, Debs: []string{"python3-torch-cuda"},
			Index: "whl/" + cudaLabel, Flavour: "cuda", LibsDir: "torch/lib", VersionPy: "torch/version.py"},
	)
	return out
}

type indexSpec struct {
	SDE        int64       `json:"sde"`
	PythonTag  string      `json:"python_tag"`
	Wheels     []wheelSpec `json:"wheels"`
	CUDAUnpack []string    `json:"cuda_unpack"`
}

// indexScriptVersion changes whenever the wheelhouse graph changes.
const indexScriptVersion = 4

// Wheel is one file the index serves.
type Wheel struct {
	Name    string `json:"name"`    // project name
	Version string `json:"version"` // with its local label, if any
	Index   string `json:"index"`   // simple, whl/cpu, whl/cu124
	File    string `json:"file"`    // path under the server root
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

type indexStamp struct {
	Key    string  `json:"key"`
	Wheels []Wheel `json:"wheels"`
}

// ensureIndex makes the wheelhouse (a BuildKit graph from the two base
// images) and the PEP 503 pages, unless the cached ones match the inputs
// and are intact.
func ensureIndex(ctx context.Context, w *World, root string) (*indexStamp, string, error) {
	l := w.layout
	spec := indexSpec{SDE: sourceDateEpoch(), PythonTag: "cp313", Wheels: wheelSpecs(), CUDAUnpack: []string{"libtorch-cuda-2.6"}}
	k := key(spec, repackPy, checkPy, prepareCUDAPy, w.PythonBaseDigest, w.CUDABaseDigest, indexScriptVersion)
	dir := l.path("index", k)
	current := l.path("index", "current")
	var st indexStamp
	if readJSON(filepath.Join(dir, "index.json"), &st) == nil && st.Key == k && wheelsIntact(dir, st.Wheels) {
		if target, _ := os.Readlink(current); target != k {
			if err := relink(current, k); err != nil {
				return nil, "", err
			}
		}
		return &st, "reused", nil
	}
	logPath := l.logFile("index")
	os.Remove(logPath)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	start := time.Now()
	w.logf("index: building the wheelhouse on buildkitd (log %s)", logPath)
	if err := solveWheelhouse(ctx, w, spec, k, tmp, logPath); err != nil {
		return nil, "", failed("building the package index (Debian packages repacked as wheels on buildkitd)", logPath, err)
	}
	w.logf("index: wheelhouse built in %s", time.Since(start).Round(time.Second))
	wheels, err := writePages(tmp)
	if err != nil {
		return nil, "", failed("writing the index pages", logPath, err)
	}
	st = indexStamp{Key: k, Wheels: wheels}
	if err := writeJSON(filepath.Join(tmp, "index.json"), st); err != nil {
		return nil, "", err
	}
	// Swap in place: the old directory (a broken one being repaired) is
	// moved aside first, so the served index is never missing for long.
	old := dir + ".old"
	os.RemoveAll(old)
	os.Rename(dir, old)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, "", err
	}
	os.RemoveAll(old)
	if err := relink(current, k); err != nil {
		return nil, "", err
	}
	// Older wheelhouses are of no use any more.
	entries, _ := os.ReadDir(l.path("index"))
	for _, e := range entries {
		if e.IsDir() && e.Name() != k {
			os.RemoveAll(l.path("index", e.Name()))
		}
	}
	return &st, "built", nil
}

func relink(link, target string) error {
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

func wheelsIntact(dir string, wheels []Wheel) bool {
	if len(wheels) == 0 {
		return false
	}
	for _, wh := range wheels {
		st, err := os.Stat(filepath.Join(dir, wh.File))
		if err != nil || st.Size() != wh.Size {
			return false
		}
	}
	for _, page := range []string{"simple/index.html", "whl/cpu/torch/index.html", "whl/" + cudaLabel + "/torch/index.html"} {
		if _, err := os.Stat(filepath.Join(dir, page)); err != nil {
			return false
		}
	}
	return true
}

// solveWheelhouse builds and checks the wheels on buildkitd and exports
// them to out.
func solveWheelhouse(ctx context.Context, w *World, spec indexSpec, k, out, logPath string) error {
	def, err := wheelhouseGraph(ctx, w, spec)
	if err != nil {
		return err
	}
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
	cacheDir := w.layout.path("index-buildcache")
	keyFile := filepath.Join(cacheDir, "ktrdr-world.key")
	opt := client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}}}
	if b, err := os.ReadFile(keyFile); err == nil && string(b) == k {
		opt.CacheImports = []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{"src": cacheDir}}}
		return solve(ctx, c, def, opt, lf)
	}
	os.RemoveAll(cacheDir + ".new")
	opt.CacheExports = []client.CacheOptionsEntry{{Type: "local", Attrs: map[string]string{
		"dest": cacheDir + ".new", "mode": "min", "compression": "zstd",
	}}}
	if err := solve(ctx, c, def, opt, lf); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cacheDir+".new", "ktrdr-world.key"), []byte(k), 0o644); err != nil {
		return err
	}
	os.RemoveAll(cacheDir)
	return os.Rename(cacheDir+".new", cacheDir)
}

// solve runs a definition with plain progress written to log.
func solve(ctx context.Context, c *client.Client, def *llb.Definition, opt client.SolveOpt, log io.Writer) error {
	ch := make(chan *client.SolveStatus)
	display, err := newPlainDisplay(log)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		display(ch)
		close(done)
	}()
	_, err = c.Solve(ctx, def, opt, ch)
	<-done
	return err
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

var platform = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// wheelhouseGraph is the LLB graph of the index:
//
//	python base ─► apt-get install the Debian packages ─► repack.py (cpu) ─► /out ─┐
//	python base (bare, no network) ◄── check.py cpu ◄────────────────────────────────┤
//	CUDA base ─► prepare-cuda ─► repack.py (cuda) ─► /out ──────────────────────────┤─► merge ─► export
//	CUDA base (bare, no network) ◄── check.py cuda ◄─────────────────────────────────┘
func wheelhouseGraph(ctx context.Context, w *World, spec indexSpec) (*llb.Definition, error) {
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
	run := func(st llb.State, name string, net bool, args []string, opts ...llb.RunOption) llb.ExecState {
		o := append([]llb.RunOption{llb.Args(args), llb.WithCustomName(name)}, env...)
		if !net {
			o = append(o, llb.Network(llb.NetModeNone))
		}
		return st.Run(append(o, opts...)...)
	}

	cpuInstalled := run(pyBase, "install the Debian packages to repack ("+fmt.Sprint(len(debs))+")", true, []string{"/bin/sh", "-c",
		"set -e; apt-get update; apt-get install -y --no-install-recommends patchelf " + strings.Join(debs, " ") + "; rm -rf /var/lib/apt/lists/*"}).Root()
	cpuWheels := run(cpuInstalled, "repack the CPU wheels", false, []string{"python3", "/repack/repack.py", "build",
		"--spec", "/repack/spec.json", "--flavour", "cpu", "--base", "/base", "--out", "/out"},
		llb.AddMount("/repack", repack, llb.Readonly), llb.AddMount("/base", pyBase, llb.Readonly)).AddMount("/out", llb.Scratch())
	cpuCheck := run(pyBase, "check the CPU wheels in the bare python base, no network", false, []string{"python3", "/check/check.py", "cpu",
		"--wheels", "/wheels", "--report", "/report/checks/cpu.txt"},
		llb.AddMount("/check", check, llb.Readonly), llb.AddMount("/wheels", cpuWheels, llb.Readonly)).AddMount("/report", llb.Scratch())

	cudaInstalled := run(cudaBase, "install python3-torch-cuda's libraries, unpack it", true,
		append([]string{"python3", "/prepare/prepare_cuda.py"}, cudaDebs...), llb.AddMount("/prepare", prepare, llb.Readonly)).Root()
	cudaWheels := run(cudaInstalled, "repack the CUDA torch wheel", false, []string{"python3", "/repack/repack.py", "build",
		"--spec", "/repack/spec.json", "--flavour", "cuda", "--base", "/base", "--out", "/out"},
		llb.AddMount("/repack", repack, llb.Readonly), llb.AddMount("/base", cudaBase, llb.Readonly)).AddMount("/out", llb.Scratch())
	cudaCheck := run(cudaBase, "check the CUDA torch wheel in the bare CUDA base, no network", false, []string{"python3", "/check/check.py", "cuda",
		"--wheels", "/wheels", "--deps", "/deps", "--cuda-version", cudaVersion, "--report", "/report/checks/cuda.txt"},
		llb.AddMount("/check", check, llb.Readonly), llb.AddMount("/wheels", cudaWheels, llb.Readonly), llb.AddMount("/deps", cpuWheels, llb.Readonly)).AddMount("/report", llb.Scratch())

	all := llb.Merge([]llb.State{cpuWheels, cudaWheels, cpuCheck, cudaCheck}, llb.WithCustomName("the index"))
	return all.Marshal(ctx, llb.Platform(platform))
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
