package pyproject

import (
	"strings"
	"testing"
)

const full = `
[project]
name = "My_Project"
version = "0.1.0"
requires-python = ">=3.12"
dependencies = ["fastapi>=0.115", "SQLAlchemy[asyncio]>=2"]

[project.optional-dependencies]
ML = ["torch>=2.6"]
cpu = ["torch>=2.6"]
cu124 = ["torch>=2.6"]

[dependency-groups]
test = ["pytest>=8"]
dev = [{ include-group = "test" }, "mypy"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.uv]
dev-dependencies = ["black"]
default-groups = ["dev"]
conflicts = [[{ extra = "cpu" }, { extra = "cu124" }]]

[tool.uv.sources]
torch = [
  { index = "pytorch-cpu", extra = "cpu" },
  { index = "pytorch-cu124", extra = "cu124", marker = "sys_platform == 'linux'" },
]
mylib = { path = "../mylib" }

[[tool.uv.index]]
name = "pytorch-cpu"
url = "https://download.pytorch.org/whl/cpu"
explicit = true

[[tool.uv.index]]
name = "pytorch-cu124"
url = "https://download.pytorch.org/whl/cu124"
explicit = true
`

func TestParseFull(t *testing.T) {
	p, err := Parse("pyproject.toml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if p.NormalizedName() != "my-project" || len(p.Dependencies) != 2 || p.Dependencies[1].NormalizedName() != "sqlalchemy" {
		t.Errorf("project: %+v", p)
	}
	if !p.HasExtra("ml") || !p.HasExtra("ML") || p.HasExtra("gpu") {
		t.Errorf("extras %v", p.Extras())
	}
	if got := strings.Join(p.Groups(), ","); got != "dev,test" {
		t.Errorf("groups %s", got)
	}
	// Legacy [tool.uv] dev-dependencies join the dev group.
	if n := len(p.DependencyGroups["dev"]); n != 3 {
		t.Errorf("dev group has %d entries, want include + mypy + black", n)
	}
	if p.BuildSystem.BuildBackend != "hatchling.build" || p.UV.DefaultGroups[0] != "dev" {
		t.Errorf("build system / default groups: %+v %+v", p.BuildSystem, p.UV.DefaultGroups)
	}
	if len(p.UV.Conflicts) != 1 || p.UV.Conflicts[0][1].Extra != "cu124" {
		t.Errorf("conflicts %+v", p.UV.Conflicts)
	}
	src := p.UV.Sources["torch"]
	if len(src) != 2 || src[1].Index != "pytorch-cu124" || src[1].Marker.IsEmpty() || src[0].Kind != "index" {
		t.Errorf("torch sources %+v", src)
	}
	if p.UV.Sources["mylib"][0].Kind != "path" {
		t.Errorf("mylib source %+v", p.UV.Sources["mylib"])
	}
	if ix, ok := p.IndexByName("pytorch-cpu"); !ok || !ix.Explicit || ix.URL != "https://download.pytorch.org/whl/cpu" {
		t.Errorf("index %+v", ix)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"no project", "[tool.x]\na = 1\n", "no [project] table"},
		{"no name", "[project]\nversion = \"1\"\n", "no name"},
		{"bad requirement", "[project]\nname = \"x\"\ndependencies = [\"fast api\"]\n", "[project] dependencies"},
		{"bad toml", "[project]\nname = \"x\"\nversion = 1.2.3\n", "pyproject.toml:3:"},
		{"wrong type", "[project]\nname = \"x\"\ndependencies = \"fastapi\"\n", "pyproject.toml"},
		{"unknown index", "[project]\nname = \"x\"\n[tool.uv.sources]\ntorch = { index = \"nope\" }\n", `index "nope"`},
		{"source extra undeclared", "[project]\nname = \"x\"\n[tool.uv.sources]\ntorch = { index = \"a\", extra = \"cpu\" }\n[[tool.uv.index]]\nname = \"a\"\nurl = \"https://x\"\n", `extra "cpu"`},
		{"conflict item", "[project]\nname = \"x\"\n[tool.uv]\nconflicts = [[{ package = \"x\" }]]\n", "exactly one of extra or group"},
		{"bad group entry", "[project]\nname = \"x\"\n[dependency-groups]\ndev = [{ include = \"x\" }]\n", "include-group"},
		{"duplicate extra", "[project]\nname = \"x\"\n[project.optional-dependencies]\nML = []\nml = []\n", "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pyproject.toml", []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pyproject.toml") {
				t.Fatalf("got %v, want an error naming pyproject.toml with %q", err, tc.want)
			}
		})
	}
}

func TestGroupClosureUnknownInclude(t *testing.T) {
	p, err := Parse("pyproject.toml", []byte("[project]\nname = \"x\"\n[dependency-groups]\ndev = [{ include-group = \"lint\" }]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.GroupClosure("dev"); err == nil || !strings.Contains(err.Error(), `unknown group "lint"`) {
		t.Fatalf("got %v", err)
	}
}
