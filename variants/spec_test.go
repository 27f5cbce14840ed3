package variants

import (
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// ktrdrLiteral is KTRDR's four variants as the Go literal they were before
// the spec (variants.All up to commit 5c81b4a), with the archive/tests
// absent paths every image was probed for: the embedded spec must give
// exactly these.
func ktrdrLiteral() []Variant {
	absent := []string{"archive", "tests"}
	return []Variant{
		{
			Absent:      absent,
			Name:        BackendDev,
			Description: "development backend: every dependency incl. the dev group, CPU-only torch, code mounted at run time",
			Extras:      []string{"ml"},
			Groups:      []string{"dev"},
			Torch:       uvlock.FlavourCPU,
			Image:       "ktrdr-backend:dev",
			Port:        8000,
			HealthPath:  "/api/v1/health",
			Launcher:    []string{"uvicorn"},
			App:         "ktrdr.api.main:app",
			// --reload-dir: without watchfiles (not in the lock) uvicorn's
			// reloader polls every *.py under its directories, the venv's
			// 9,000 included: 47% of a core while idle, against 0.8% when it
			// watches the mounted code only (measured with docker stats).
			ExtraArgs:    []string{"--reload", "--reload-dir", "/app/ktrdr", "--log-config", "/app/ktrdr/config/logging_config.json"},
			RunMounts:    []string{"ktrdr"},
			HealthExpect: map[string]any{"status": "ok"},
			Tools:        [][]string{{"pytest", "--version"}, {"mypy", "--version"}, {"black", "--version"}},
		},
		{
			Absent:         absent,
			Name:           BackendProd,
			Description:    "production API backend: runtime dependencies only, no torch",
			Torch:          uvlock.FlavourNone,
			Image:          "ktrdr-backend:prod",
			Copy:           []string{"ktrdr", "mcp", "config", "strategies", "alembic", "alembic.ini", "pyproject.toml", "README.md"},
			InstallProject: true,
			Port:           8000,
			HealthPath:     "/api/v1/health",
			Launcher:       []string{"uvicorn"},
			App:            "ktrdr.api.main:app",
			HealthExpect:   map[string]any{"status": "ok"},
		},
		{
			Absent:         absent,
			Name:           WorkerCPU,
			Description:    "backtest/training worker with CPU-only torch (no CUDA, no nvidia-* wheels)",
			Extras:         []string{"ml"},
			Torch:          uvlock.FlavourCPU,
			Image:          "ktrdr-worker-cpu:latest",
			Copy:           []string{"ktrdr", "config", "strategies", "pyproject.toml", "README.md"},
			InstallProject: true,
			Port:           5003,
			HealthPath:     "/health",
			Launcher:       []string{"uvicorn"},
			App:            "ktrdr.backtesting.backtest_worker:app",
			HealthExpect:   map[string]any{"healthy": true},
		},
		{
			Absent:         absent,
			Name:           WorkerGPU,
			Description:    "training worker with CUDA torch and exactly one CUDA stack",
			Extras:         []string{"ml"},
			Torch:          uvlock.FlavourCUDA,
			Image:          "ktrdr-worker-gpu:latest",
			CUDABase:       true,
			Copy:           []string{"ktrdr", "config", "strategies", "pyproject.toml", "README.md"},
			InstallProject: true,
			Port:           5002,
			HealthPath:     "/health",
			Launcher:       []string{"python", "-m", "uvicorn"},
			App:            "ktrdr.training.training_worker_api:app",
			Volumes:        []string{"/app/data", "/app/logs"},
			HealthExpect:   map[string]any{"healthy": true},
		},
	}
}

func TestDefaultSpecIsKTRDRs(t *testing.T) {
	s := DefaultSpec()
	if !s.Default || s.DefaultTarget != BackendProd {
		t.Errorf("default spec: Default %v, DefaultTarget %q", s.Default, s.DefaultTarget)
	}
	want := ktrdrLiteral()
	if len(s.Variants) != len(want) {
		t.Fatalf("%d images, want %d", len(s.Variants), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(s.Variants[i], want[i]) {
			t.Errorf("image %d:\n got %+v\nwant %+v", i, s.Variants[i], want[i])
		}
	}
	// Its settings are the built-in defaults: applying them changes
	// nothing.
	o, err := s.Apply(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o, DefaultOptions()) {
		t.Errorf("the default spec's settings differ from DefaultOptions:\n%+v\n%+v", o, DefaultOptions())
	}
}

const project = `[project]
name = "app"
version = "1.0"
dependencies = ["fastapi"]

[project.optional-dependencies]
cpu = ["torch"]

[dependency-groups]
dev = ["pytest"]
`

func loadTestSpec(t *testing.T, table string) (*Spec, error) {
	t.Helper()
	proj, err := pyproject.Parse("app/pyproject.toml", []byte(project+table))
	if err != nil {
		// Duplicate keys are pyproject.toml's own error, found first.
		return nil, err
	}
	return LoadSpec(proj, nil)
}

// line is the line of the test project's pyproject.toml a table's line n
// (1-based) is on.
func line(n int) string {
	return "app/pyproject.toml:" + strconv.Itoa(strings.Count(project, "\n")+n) + ": "
}

func TestSpec(t *testing.T) {
	s, err := loadTestSpec(t, `
[tool.ktrdr-images]
user = "app"
uid = 1000
gid = 1000
toolchain = ["gcc"]
labels = { team = "quant" }

[[tool.ktrdr-images.image]]
name = "api"
copy = ["src", "pyproject.toml"]
install-project = true
app = "app.api:app"
port = 8080
health-path = "/healthz"
health-expect = { status = "ok", n = 3 }
env = { APP_MODE = "api", B = "2" }

[[tool.ktrdr-images.image]]
name = "worker"
extras = ["cpu"]
torch = "cpu"
command = ["python", "-m", "app.worker"]
check = ["python", "-m", "app.worker", "--check"]
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "api,worker" || s.DefaultTarget != "api" {
		t.Fatalf("names %s, default %s", got, s.DefaultTarget)
	}
	api, _ := s.Lookup("api")
	if api.Image != "api:latest" || api.Torch != uvlock.FlavourNone || strings.Join(api.Launcher, " ") != "uvicorn" ||
		api.HealthExpect["n"] != float64(3) || strings.Join(api.Env, " ") != "APP_MODE=api B=2" {
		t.Errorf("api: %+v", api)
	}
	if got := strings.Join(api.Command("app.api:app", 8080), " "); got != "uvicorn app.api:app --host 0.0.0.0 --port 8080" {
		t.Errorf("api command %q", got)
	}
	w, _ := s.Lookup("worker")
	if got := strings.Join(w.Command("", 0), " "); got != "python -m app.worker" || w.Port != 0 || len(w.Check) != 4 {
		t.Errorf("worker: %+v, command %q", w, got)
	}

	// Settings sit between the built-in defaults and the user's options.
	o := DefaultOptions()
	if err := o.Set("uid", "2000"); err != nil {
		t.Fatal(err)
	}
	o.PythonBase = "127.0.0.1:5000/library/python:3.13-slim" // set by a program, not the default
	o, err = s.Apply(o)
	if err != nil {
		t.Fatal(err)
	}
	if o.User != "app" || o.UID != 2000 || o.GID != 1000 || strings.Join(o.Toolchain, ",") != "gcc" ||
		o.Labels["team"] != "quant" || o.PythonBase != "127.0.0.1:5000/library/python:3.13-slim" {
		t.Errorf("applied: user %s uid %d gid %d toolchain %v labels %v base %s", o.User, o.UID, o.GID, o.Toolchain, o.Labels, o.PythonBase)
	}
	if _, err := s.Lookup("backend-prod"); err == nil || !strings.Contains(err.Error(), `unknown variant "backend-prod": expected one of api, worker (from app/pyproject.toml [tool.ktrdr-images])`) {
		t.Errorf("lookup: %v", err)
	}
	o2 := DefaultOptions()
	o2.Set("app.worker", "x:y")
	if _, err := s.Apply(o2); err == nil || !strings.Contains(err.Error(), "option app.worker: variant worker has a command, not an ASGI app") {
		t.Errorf("app.worker: %v", err)
	}
}

func TestSpecErrors(t *testing.T) {
	const img = "\n[[tool.ktrdr-images.image]]\nname = \"api\"\n"
	for _, tc := range []struct{ name, table, want string }{
		{"unknown key", img + "app = \"a:b\"\nport = 1\nhealthpath = \"/h\"\n",
			line(6) + `[tool.ktrdr-images] image "api": unknown key healthpath: expected one of name, description`},
		{"unknown setting", "\n[tool.ktrdr-images]\nregistery = \"r\"\n" + img + "command = [\"x\"]\n",
			line(3) + "[tool.ktrdr-images] key registery: unknown key: expected image (the images), default-target or a setting: "},
		{"wrong type", img + "app = \"a:b\"\nport = \"8000\"\n",
			line(5) + `[tool.ktrdr-images] image "api", key port: expected an integer, not a string`},
		{"wrong element type", img + "command = [\"python\", 3]\n",
			line(4) + `[tool.ktrdr-images] image "api", key command: element 2: expected a string, not a integer`},
		{"setting of the wrong type", "\n[tool.ktrdr-images]\nuid = \"1000\"\n" + img + "command = [\"x\"]\n",
			line(3) + "[tool.ktrdr-images] key uid: expected an integer, not a string"},
		{"setting refused by its option", "\n[tool.ktrdr-images]\nuid = -5\nlayer-threshold = \"big\"\n" + img + "command = [\"x\"]\n",
			line(4) + `[tool.ktrdr-images] key layer-threshold: option layer-threshold="big": expected a size`},
		{"unknown extra", img + "command = [\"x\"]\nextras = [\"gpu\"]\n",
			line(5) + `[tool.ktrdr-images] image "api", key extras: unknown extra "gpu": app/pyproject.toml declares cpu`},
		{"unknown group", img + "command = [\"x\"]\ngroups = [\"docs\"]\n",
			line(5) + `[tool.ktrdr-images] image "api", key groups: unknown dependency group "docs": app/pyproject.toml declares dev`},
		{"unknown flavour", img + "command = [\"x\"]\ntorch = \"rocm\"\n",
			line(5) + `[tool.ktrdr-images] image "api", key torch: torch flavour "rocm": expected one of none, cpu, cuda`},
		{"two images, one name", img + "command = [\"x\"]\n" + img + "command = [\"y\"]\n",
			line(7) + `[tool.ktrdr-images] image "api": two images are named api (the first on line ` + strconv.Itoa(strings.Count(project, "\n")+3) + `): names must be unique`},
		{"port out of range", img + "app = \"a:b\"\nport = 70000\n",
			line(5) + `[tool.ktrdr-images] image "api", key port: 70000 is out of range: expected a port number from 1 to 65535`},
		{"health path without a port", img + "command = [\"x\"]\nhealth-path = \"/health\"\n",
			line(5) + `[tool.ktrdr-images] image "api", key health-path: a health path needs a port: expected port = N beside it`},
		{"no command", img + "port = 80\n",
			line(2) + `[tool.ktrdr-images] image "api": no command: expected command = [...], or app = "module:attr"`},
		{"app without a port", img + "app = \"a:b\"\n",
			line(4) + `[tool.ktrdr-images] image "api", key app: an ASGI app is served on a port`},
		{"command and app", img + "app = \"a:b\"\nport = 1\ncommand = [\"x\"]\n",
			line(6) + `[tool.ktrdr-images] image "api", key command: expected either command or launcher, app and args, not both`},
		{"cuda base without cuda", img + "command = [\"x\"]\ncuda-base = true\n",
			line(5) + `[tool.ktrdr-images] image "api", key cuda-base: only an image with torch = "cuda" can take CUDA from a CUDA base`},
		{"copy out of the context", img + "command = [\"x\"]\ncopy = [\"../secrets\"]\n",
			line(5) + `[tool.ktrdr-images] image "api", key copy: "../secrets": expected a relative path inside the build context`},
		{"bad name", "\n[[tool.ktrdr-images.image]]\nname = \"API server\"\ncommand = [\"x\"]\n",
			line(3) + `[tool.ktrdr-images] image 1, key name: "API server": expected lower-case letters`},
		{"no name", "\n[[tool.ktrdr-images.image]]\ncommand = [\"x\"]\n",
			line(2) + `[tool.ktrdr-images] image 1: no name`},
		{"no images", "\n[tool.ktrdr-images]\nuser = \"app\"\n",
			line(2) + `[tool.ktrdr-images] the table: no images: expected at least one [[tool.ktrdr-images.image]] table`},
		{"image not an array of tables", "\n[tool.ktrdr-images]\nimage = \"api\"\n",
			line(3) + `[tool.ktrdr-images] key image: expected an array of tables ([[tool.ktrdr-images.image]]), not a string`},
		{"default target unknown", "\n[tool.ktrdr-images]\ndefault-target = \"web\"\n" + img + "command = [\"x\"]\n",
			line(3) + `[tool.ktrdr-images] key default-target: "web" is not one of the images: expected one of api`},
		{"volume not absolute", img + "command = [\"x\"]\nvolumes = [\"data\"]\n",
			line(5) + `[tool.ktrdr-images] image "api", key volumes: "data": expected an absolute path in the image`},
		{"health-expect not a table", img + "app = \"a:b\"\nport = 1\nhealth-path = \"/h\"\nhealth-expect = \"ok\"\n",
			line(7) + `[tool.ktrdr-images] image "api", key health-expect: expected a table of the JSON keys`},
		{"a key twice", img + "command = [\"x\"]\ncommand = [\"y\"]\n",
			"app/pyproject.toml:" + strconv.Itoa(strings.Count(project, "\n")+5) + ":1: malformed TOML: toml: key command is already defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadTestSpec(t, tc.table)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant an error containing %s", err, tc.want)
			}
		})
	}
}

func TestNoSpecIsKTRDRs(t *testing.T) {
	s, err := loadTestSpec(t, "\n[tool.uv]\npackage = true\n")
	if err == nil && !s.Default {
		t.Errorf("a project without [tool.ktrdr-images] got %+v", s)
	}
	// KTRDR's images need the ml extra: the default spec is checked
	// against the project like any other.
	if err == nil || !strings.Contains(err.Error(), `variants/ktrdr.toml (the default spec):24: [tool.ktrdr-images] image "backend-dev", key extras: unknown extra "ml"`) {
		t.Errorf("got %v", err)
	}
}

// TestSecondExample: examples/signals declares its own three images, and
// its uv.lock (made by uv, both torch builds under conflicting extras)
// serves each image its own torch build, as locked, with hashes.
func TestSecondExample(t *testing.T) {
	proj, lock, err := uvlock.LoadProject(filepath.Join("..", "examples", "signals"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSpec(proj, lock)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), " "); got != "api worker-cpu worker-cu124" || s.Default || s.DefaultTarget != "api" {
		t.Fatalf("images %q, default %v, default target %q", got, s.Default, s.DefaultTarget)
	}
	for _, tc := range []struct {
		image, torch, index string
		nvidia              int
	}{
		{"api", "", "", 0},
		{"worker-cpu", "2.6.0+cpu", "/whl/cpu", 0},
		{"worker-cu124", "2.6.0", "/simple", 12},
	} {
		v, err := s.Lookup(tc.image)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Pins(proj, lock, Target{})
		if err != nil {
			t.Fatalf("%s: %v", tc.image, err)
		}
		nvidia := 0
		for _, p := range res.Pins {
			if strings.HasPrefix(p.Name, "nvidia-") {
				nvidia++
			}
		}
		if nvidia != tc.nvidia {
			t.Errorf("%s: %d nvidia-* pins, expected %d", tc.image, nvidia, tc.nvidia)
		}
		p, ok := res.Pin("torch")
		if tc.torch == "" {
			if ok {
				t.Errorf("%s has torch %s", tc.image, p.Version)
			}
			continue
		}
		if !ok || p.Version != tc.torch || !strings.HasSuffix(p.Index, tc.index) || len(p.Hashes) == 0 {
			t.Errorf("%s: torch %+v, expected %s from %s with the lock's hashes", tc.image, p, tc.torch, tc.index)
		}
		if res.Flavour.Extra != strings.TrimPrefix(tc.image, "worker-") {
			t.Errorf("%s: flavour extra %q", tc.image, res.Flavour.Extra)
		}
	}
}

// TestVariantValidate: a variant made in Go is checked as the spec reader
// checks a table, the error naming the image and the key; every image of
// the default spec passes.
func TestVariantValidate(t *testing.T) {
	for _, v := range All() {
		if err := v.Validate(); err != nil {
			t.Errorf("%s: %v", v.Name, err)
		}
	}
	prod, err := Lookup(BackendProd)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(v *Variant)
		want   string
	}{
		{"bad name", func(v *Variant) { v.Name = "API" }, `image "API", key name: "API": expected lower-case letters`},
		{"no flavour", func(v *Variant) { v.Torch = "" }, `image "backend-prod", key torch: torch flavour "": expected one of none, cpu, cuda`},
		{"copy out of the context", func(v *Variant) { v.Copy = []string{"/etc"} }, `image "backend-prod", key copy: "/etc": expected a relative path`},
		{"env without =", func(v *Variant) { v.Env = []string{"DEBUG"} }, `image "backend-prod", key env: "DEBUG": expected NAME=VALUE`},
		{"app without a launcher", func(v *Variant) { v.Launcher = nil }, `image "backend-prod", key launcher: an ASGI app needs a launcher`},
		{"command and app", func(v *Variant) { v.Cmd = []string{"python", "-m", "app"} }, `image "backend-prod", key command: expected either command or launcher, app and args, not both`},
		{"no command", func(v *Variant) { v.App, v.Launcher = "", nil }, `image "backend-prod": no command`},
		{"port out of range", func(v *Variant) { v.Port = 70000 }, `image "backend-prod", key port: 70000 is out of range`},
		{"health path without a port", func(v *Variant) { v.Port, v.App, v.Launcher, v.Cmd = 0, "", nil, []string{"x"} }, `image "backend-prod", key health-path: a health path needs a port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := prod
			tc.change(&v)
			if err := v.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant an error containing %s", err, tc.want)
			}
		})
	}
	// A worker with a command and no port is valid.
	w := Variant{Name: "worker", Torch: uvlock.FlavourNone, Cmd: []string{"python", "-m", "worker"}}
	if err := w.Validate(); err != nil {
		t.Errorf("worker: %v", err)
	}
}
