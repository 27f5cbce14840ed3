package uvlock

import (
	"slices"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// env returns the environment of CPython on linux/<arch>.
func env(t *testing.T, arch, python string) pep508.Environment {
	t.Helper()
	e, err := pep508.EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: arch}, python)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// inline parses a pyproject.toml and uv.lock given as strings.
func inline(t *testing.T, pyprojectText, lockText string) (*pyproject.Project, *Lock) {
	t.Helper()
	proj, err := pyproject.Parse("pyproject.toml", []byte(pyprojectText))
	if err != nil {
		t.Fatalf("pyproject: %v", err)
	}
	lock, err := Parse("uv.lock", []byte(lockText))
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	return proj, lock
}

func load(t *testing.T, dir string) (*pyproject.Project, *Lock) {
	t.Helper()
	proj, lock, err := LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	return proj, lock
}

func resolve(t *testing.T, proj *pyproject.Project, lock *Lock, req Request) *Resolution {
	t.Helper()
	res, err := Resolve(proj, lock, req)
	if err != nil {
		t.Fatalf("Resolve(%+v): %v", req, err)
	}
	return res
}

func pinned(r *Resolution) []string {
	var out []string
	for _, p := range r.Pins {
		out = append(out, p.Requirement())
	}
	return out
}

func assertSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

const smallProject = `
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.12"
dependencies = ["web[async]>=1", "winonly; sys_platform == 'win32'", "a"]

[dependency-groups]
test = ["pytest"]
lint = ["ruff"]
dev = [{ include-group = "test" }, { include-group = "lint" }, "mypy"]
`

const smallLock = `
version = 1
revision = 2
requires-python = ">=3.12"

[[package]]
name = "a"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "b" }]

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "a" },
    { name = "web", extra = ["async"] },
    { name = "winonly", marker = "sys_platform == 'win32'" },
]

[package.dev-dependencies]
dev = [{ name = "mypy" }, { name = "pytest" }, { name = "ruff" }]
lint = [{ name = "ruff" }]
test = [{ name = "pytest" }]

[package.metadata]
requires-dist = [
    { name = "a" },
    { name = "web", extras = ["async"], specifier = ">=1" },
    { name = "winonly", marker = "sys_platform == 'win32'" },
]

[package.metadata.requires-dev]
dev = [{ name = "mypy" }]
lint = [{ name = "ruff" }]
test = [{ name = "pytest" }]

[[package]]
name = "b"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "a" }, { name = "uvloop", marker = "sys_platform != 'win32' and platform_python_implementation == 'CPython'" }]

[[package]]
name = "greenlet"
version = "3.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "mypy"
version = "1.10"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pytest"
version = "8.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "ruff"
version = "0.5"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "uvloop"
version = "0.21"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "web"
version = "1.2"
source = { registry = "https://pypi.org/simple" }

[package.optional-dependencies]
async = [{ name = "greenlet", marker = "platform_machine == 'x86_64'" }]
unused = [{ name = "mypy" }]

[[package]]
name = "winonly"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
`

func TestWalkExtrasMarkersCycle(t *testing.T) {
	proj, lock := inline(t, smallProject, smallLock)
	if err := Check(proj, lock); err != nil {
		t.Fatal(err)
	}
	// web[async] brings greenlet on x86_64 only; winonly never on linux;
	// a -> b -> a is a cycle; uvloop hangs off a marker that holds.
	res := resolve(t, proj, lock, Request{Env: env(t, "amd64", "3.13")})
	assertSet(t, "amd64", pinned(res), []string{"a==1.0", "b==2.0", "greenlet==3.0", "uvloop==0.21", "web==1.2"})
	res = resolve(t, proj, lock, Request{Env: env(t, "arm64", "3.13")})
	assertSet(t, "arm64", pinned(res), []string{"a==1.0", "b==2.0", "uvloop==0.21", "web==1.2"})
	// Windows takes winonly and drops uvloop (the marker says so).
	win := env(t, "amd64", "3.13")
	win.SysPlatform, win.OSName, win.PlatformSystem, win.PlatformMachine = "win32", "nt", "Windows", "AMD64"
	res = resolve(t, proj, lock, Request{Env: win})
	assertSet(t, "windows", pinned(res), []string{"a==1.0", "b==2.0", "web==1.2", "winonly==1.0"})
}

func TestWalkGroupIncludesGroup(t *testing.T) {
	proj, lock := inline(t, smallProject, smallLock)
	base := []string{"a==1.0", "b==2.0", "greenlet==3.0", "uvloop==0.21", "web==1.2"}
	res := resolve(t, proj, lock, Request{Groups: []string{"dev"}, Env: env(t, "amd64", "3.13")})
	assertSet(t, "dev", pinned(res), append(slices.Clone(base), "mypy==1.10", "pytest==8.0", "ruff==0.5"))
	res = resolve(t, proj, lock, Request{Groups: []string{"test"}, Env: env(t, "amd64", "3.13")})
	assertSet(t, "test", pinned(res), append(slices.Clone(base), "pytest==8.0"))
	groups, err := proj.GroupClosure("dev")
	if err != nil {
		t.Fatal(err)
	}
	assertSet(t, "closure", groups, []string{"dev", "lint", "test"})
}

func TestGroupIncludeCycle(t *testing.T) {
	proj, err := pyproject.Parse("p/pyproject.toml", []byte(`
[project]
name = "x"
version = "1"
[dependency-groups]
a = [{ include-group = "b" }]
b = [{ include-group = "a" }]
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = proj.GroupClosure("a")
	if err == nil || !strings.Contains(err.Error(), "includes itself") || !strings.Contains(err.Error(), "p/pyproject.toml") {
		t.Fatalf("want an include cycle error naming the file, got %v", err)
	}
}

func TestTwoVersionsByResolutionMarkers(t *testing.T) {
	proj, lock := load(t, "testdata/torch28")
	for _, tc := range []struct{ python, numpy string }{{"3.12", "2.2.6"}, {"3.12.4", "2.2.6"}, {"3.13", "2.3.2"}, {"3.13.5", "2.3.2"}} {
		res := resolve(t, proj, lock, Request{Extras: []string{"ml"}, Env: env(t, "amd64", tc.python), Torch: TorchOptions{Flavour: FlavourCPU}})
		p, ok := res.Pin("numpy")
		if !ok || p.Version != tc.numpy {
			t.Errorf("python %s: numpy %v, want %s", tc.python, p.Version, tc.numpy)
		}
	}
}

// An edge that does not name a version must be settled by the packages'
// resolution-markers.
func TestPickByResolutionMarkers(t *testing.T) {
	proj, lock := inline(t, `
[project]
name = "app"
version = "1"
dependencies = ["lib"]
`, `
version = 1
revision = 3
requires-python = ">=3.12"

[[package]]
name = "app"
version = "1"
source = { editable = "." }
dependencies = [{ name = "lib" }]

[package.metadata]
requires-dist = [{ name = "lib" }]

[[package]]
name = "lib"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["platform_machine == 'aarch64'"]

[[package]]
name = "lib"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["platform_machine != 'aarch64'"]
`)
	assertSet(t, "amd64", pinned(resolve(t, proj, lock, Request{Env: env(t, "amd64", "3.13")})), []string{"lib==2.0"})
	assertSet(t, "arm64", pinned(resolve(t, proj, lock, Request{Env: env(t, "arm64", "3.13")})), []string{"lib==1.0"})
}

func names(r *Resolution, prefix string) []string {
	var out []string
	for _, p := range r.Pins {
		if strings.HasPrefix(p.Name, prefix) {
			out = append(out, p.Name)
		}
	}
	return out
}

func TestTorchFlavoursKTRDRShape(t *testing.T) {
	proj, lock := load(t, "testdata/torch28")
	amd, arm := env(t, "amd64", "3.13"), env(t, "arm64", "3.13")
	ml := []string{"ml"}

	prod := resolve(t, proj, lock, Request{Env: amd})
	for _, n := range []string{"torch", "scikit-learn", "triton", "scipy"} {
		if _, ok := prod.Pin(n); ok {
			t.Errorf("no-ml set has %s", n)
		}
	}
	if len(names(prod, "nvidia-")) > 0 {
		t.Errorf("no-ml set has nvidia packages")
	}

	// As locked on amd64: the whole CUDA stack, once.
	gpu := resolve(t, proj, lock, Request{Extras: ml, Env: amd, Torch: TorchOptions{Flavour: FlavourCUDA}})
	if got := len(names(gpu, "nvidia-")); got != 14 {
		t.Errorf("cuda: %d nvidia packages, want 14: %v", got, names(gpu, "nvidia-"))
	}
	if p, ok := gpu.Pin("triton"); !ok || p.Version != "3.4.0" {
		t.Errorf("cuda: triton missing")
	}
	if p, _ := gpu.Pin("torch"); p.Version != "2.8.0" || p.Index != DefaultIndex || len(p.Hashes) == 0 {
		t.Errorf("cuda: torch pin %+v, want 2.8.0 from PyPI with its locked hashes", p)
	}
	if len(gpu.Dropped) != 0 {
		t.Errorf("cuda as locked dropped %v", gpu.Dropped)
	}

	// CUDA from the base image: nvidia-* out, triton (a Python package) in.
	base := resolve(t, proj, lock, Request{Extras: ml, Env: amd, Torch: TorchOptions{Flavour: FlavourCUDA, CUDAFromBase: true}})
	if got := names(base, "nvidia-"); len(got) != 0 {
		t.Errorf("cuda from base still has %v", got)
	}
	if _, ok := base.Pin("triton"); !ok {
		t.Errorf("cuda from base lost triton")
	}
	viaIndex := resolve(t, proj, lock, Request{Extras: ml, Env: amd, Torch: TorchOptions{Flavour: FlavourCUDA, CUDAFromBase: true, CUDAIndex: "http://127.0.0.1:8080/whl/cu124"}})
	if p, _ := viaIndex.Pin("torch"); p.Version != "2.8.0" || p.Index != "http://127.0.0.1:8080/whl/cu124" || len(p.Hashes) != 0 {
		t.Errorf("cuda from a CUDA index: torch pin %+v", p)
	}
	if len(base.Dropped) != 14 {
		t.Errorf("cuda from base dropped %d, want 14", len(base.Dropped))
	}

	// CPU: computed from the graph, the same set on both architectures.
	cpu := resolve(t, proj, lock, Request{Extras: ml, Env: amd, Torch: TorchOptions{Flavour: FlavourCPU}})
	cpuArm := resolve(t, proj, lock, Request{Extras: ml, Env: arm, Torch: TorchOptions{Flavour: FlavourCPU}})
	for _, r := range []*Resolution{cpu, cpuArm} {
		if got := names(r, "nvidia-"); len(got) != 0 {
			t.Errorf("cpu has %v", got)
		}
		if _, ok := r.Pin("triton"); ok {
			t.Errorf("cpu has triton")
		}
		// setuptools stays: torch needs it itself, not only through triton.
		for _, n := range []string{"setuptools", "sympy", "mpmath", "scikit-learn", "scipy", "filelock"} {
			if _, ok := r.Pin(n); !ok {
				t.Errorf("cpu lost %s", n)
			}
		}
		p, _ := r.Pin("torch")
		if p.Version != "2.8.0+cpu" || p.Index != DefaultCPUIndex || len(p.Hashes) != 0 {
			t.Errorf("cpu torch pin %+v, want 2.8.0+cpu from %s without PyPI's hashes", p, DefaultCPUIndex)
		}
	}
	assertSet(t, "cpu amd64 vs arm64", pinned(cpu), pinned(cpuArm))
	if len(cpu.Dropped) != 15 {
		t.Errorf("cpu on amd64 dropped %d packages, want 14 nvidia + triton", len(cpu.Dropped))
	}
	if len(cpuArm.Dropped) != 0 {
		t.Errorf("cpu on arm64 dropped %v; nothing CUDA is locked there", cpuArm.Dropped)
	}
	if cpu.Flavour.Method != "lock graph" {
		t.Errorf("method %q", cpu.Flavour.Method)
	}

	// dev = cpu + the dev group (which includes the test group).
	dev := resolve(t, proj, lock, Request{Extras: ml, Groups: []string{"dev"}, Env: amd, Torch: TorchOptions{Flavour: FlavourCPU}})
	want := append(pinned(cpu), "iniconfig==2.1.0", "mypy==1.17.1", "mypy-extensions==1.1.0", "packaging==25.0", "pathspec==0.12.1", "pluggy==1.6.0", "pygments==2.19.2", "pytest==8.4.1")
	assertSet(t, "dev", pinned(dev), want)

	// CUDA torch does not exist on arm64 in this lock: a clear error.
	_, err := Resolve(proj, lock, Request{Extras: ml, Env: arm, Torch: TorchOptions{Flavour: FlavourCUDA}})
	if err == nil || !strings.Contains(err.Error(), "no CUDA dependencies") {
		t.Errorf("cuda on arm64: %v", err)
	}
	// Flavour none with torch in the set is refused.
	_, err = Resolve(proj, lock, Request{Extras: ml, Env: amd})
	if err == nil || !strings.Contains(err.Error(), "flavour none") {
		t.Errorf("none with ml: %v", err)
	}
	// Flavour cpu without torch in the set is refused.
	_, err = Resolve(proj, lock, Request{Env: amd, Torch: TorchOptions{Flavour: FlavourCPU}})
	if err == nil || !strings.Contains(err.Error(), "not in the resolved set") {
		t.Errorf("cpu without ml: %v", err)
	}
}

func TestTorchFlavourExtrasPattern(t *testing.T) {
	proj, lock := load(t, "testdata/torch-extras")
	amd := env(t, "amd64", "3.13")
	cpu := resolve(t, proj, lock, Request{Env: amd, Torch: TorchOptions{Flavour: FlavourCPU}})
	assertSet(t, "cpu", pinned(cpu), []string{"filelock==3.18.0", "jinja2==3.1.6", "markupsafe==3.0.2", "torch==2.6.0+cpu"})
	if p, _ := cpu.Pin("torch"); p.Index != "https://download.pytorch.org/whl/cpu" {
		t.Errorf("cpu torch index %q", p.Index)
	}
	if cpu.Flavour.Extra != "cpu" || cpu.Flavour.Method != "project extra" {
		t.Errorf("flavour %+v", cpu.Flavour)
	}
	cuda := resolve(t, proj, lock, Request{Env: amd, Torch: TorchOptions{Flavour: FlavourCUDA}})
	assertSet(t, "cuda", pinned(cuda), []string{"filelock==3.18.0", "jinja2==3.1.6", "markupsafe==3.0.2", "nvidia-cublas-cu12==12.4.5.8", "nvidia-cudnn-cu12==9.1.0.70", "torch==2.6.0+cu124"})
	base := resolve(t, proj, lock, Request{Env: amd, Torch: TorchOptions{Flavour: FlavourCUDA, CUDAFromBase: true}})
	assertSet(t, "cuda from base", pinned(base), []string{"filelock==3.18.0", "jinja2==3.1.6", "markupsafe==3.0.2", "torch==2.6.0+cu124"})
	none := resolve(t, proj, lock, Request{Env: amd})
	assertSet(t, "none", pinned(none), []string{"jinja2==3.1.6", "markupsafe==3.0.2"})
}

func TestResolveBadInput(t *testing.T) {
	proj, lock := load(t, "testdata/torch28")
	amd := env(t, "amd64", "3.13")
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"unknown extra", Request{Extras: []string{"gpu"}, Env: amd}, `no extra "gpu"`},
		{"unknown group", Request{Groups: []string{"docs"}, Env: amd}, `no dependency group "docs"`},
		{"python outside requires-python", Request{Env: env(t, "amd64", "3.11")}, "outside the lock's requires-python"},
		{"bad flavour", Request{Extras: []string{"ml"}, Env: amd, Torch: TorchOptions{Flavour: "rocm"}}, `expected one of none, cpu, cuda`},
		{"cuda from base on cpu", Request{Extras: []string{"ml"}, Env: amd, Torch: TorchOptions{Flavour: FlavourCPU, CUDAFromBase: true}}, "flavour cuda only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(proj, lock, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "pyproject.toml") && !strings.Contains(err.Error(), "uv.lock") && !strings.Contains(err.Error(), "flavour") {
				t.Errorf("error names neither file nor option: %v", err)
			}
		})
	}
}

func TestLockMissingPackage(t *testing.T) {
	proj, lock := inline(t, `
[project]
name = "app"
version = "1"
dependencies = ["lib"]
`, `
version = 1
revision = 3
[[package]]
name = "app"
version = "1"
source = { editable = "." }
dependencies = [{ name = "lib" }]
[package.metadata]
requires-dist = [{ name = "lib" }]
`)
	_, err := Resolve(proj, lock, Request{Env: env(t, "amd64", "3.13")})
	if err == nil || !strings.Contains(err.Error(), "lib, which is not locked") {
		t.Fatalf("got %v", err)
	}
}

func TestTwoVersionsSelectedIsAnError(t *testing.T) {
	proj, lock := inline(t, `
[project]
name = "app"
version = "1"
dependencies = ["lib"]
`, `
version = 1
revision = 3
[[package]]
name = "app"
version = "1"
source = { editable = "." }
dependencies = [
  { name = "lib", version = "1.0", source = { registry = "https://pypi.org/simple" } },
  { name = "lib", version = "2.0", source = { registry = "https://pypi.org/simple" } },
]
[package.metadata]
requires-dist = [{ name = "lib" }]
[[package]]
name = "lib"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "lib"
version = "2.0"
source = { registry = "https://pypi.org/simple" }
`)
	_, err := Resolve(proj, lock, Request{Env: env(t, "amd64", "3.13")})
	if err == nil || !strings.Contains(err.Error(), "two versions of lib") {
		t.Fatalf("got %v", err)
	}
}
