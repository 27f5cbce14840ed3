package uvlock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/python/pyproject"
)

func TestParseFixture(t *testing.T) {
	_, lock := load(t, "testdata/torch28")
	if lock.Version != 1 || lock.Revision != 3 || lock.RequiresPython != ">=3.12, <3.14" {
		t.Errorf("header: %d %d %q", lock.Version, lock.Revision, lock.RequiresPython)
	}
	if len(lock.ResolutionMarkers) != 2 {
		t.Errorf("resolution markers %v", lock.ResolutionMarkers)
	}
	if n := len(lock.PackagesNamed("numpy")); n != 2 {
		t.Errorf("numpy versions: %d", n)
	}
	torch := lock.PackagesNamed("torch")[0]
	if len(torch.Dependencies) != 22 || torch.Sdist == nil || len(torch.Wheels) != 1 || !strings.HasPrefix(torch.Wheels[0].Hash, "sha256:") {
		t.Errorf("torch: %d deps, sdist %v, wheels %v", len(torch.Dependencies), torch.Sdist, torch.Wheels)
	}
	root, err := lock.Root("KTRDR")
	if err != nil {
		t.Fatal(err)
	}
	if root.Source.Editable != "." || len(root.OptionalDependencies["ml"]) != 2 || len(root.DevDependencies["dev"]) != 2 {
		t.Errorf("root: %+v", root)
	}
	sa := lock.PackagesNamed("SQLAlchemy")[0]
	if len(sa.OptionalDependencies["asyncio"]) != 1 {
		t.Errorf("sqlalchemy extras: %v", sa.OptionalDependencies)
	}
	_, lock2 := load(t, "testdata/torch-extras")
	if len(lock2.Conflicts) != 1 || len(lock2.Conflicts[0]) != 2 || lock2.Conflicts[0][1].Extra != "cu124" {
		t.Errorf("conflicts: %+v", lock2.Conflicts)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"malformed TOML", "version = 1\nrevision = 3\n[[package]\nname = \"x\"\n", []string{"uv.lock:3:", "malformed TOML"}},
		{"unknown version", "version = 2\nrevision = 0\n", []string{"uv.lock", "version 2 is not supported", "version 1"}},
		{"no version", "revision = 3\n", []string{"uv.lock", "no top-level version"}},
		{"string version", "version = \"1\"\n", []string{"uv.lock", "expected the integer 1"}},
		{"bad marker", "version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { registry = \"x\" }\ndependencies = [{ name = \"b\", marker = \"python_version >< '3'\" }]\n", []string{"uv.lock", "[[package]] #1 (a)", "dependencies: b"}},
		{"no source", "version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\n", []string{"uv.lock", "no source"}},
		{"duplicate", "version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { registry = \"x\" }\n[[package]]\nname = \"A\"\nversion = \"1\"\nsource = { registry = \"x\" }\n", []string{"locked twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("uv.lock", []byte(tc.text))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMalformedPyprojectNamesLineAndColumn(t *testing.T) {
	_, err := pyproject.Parse("ctx/pyproject.toml", []byte("[project]\nname = \"x\"\ndependencies = [\"a\",\n  oops]\n"))
	if err == nil || !strings.Contains(err.Error(), "ctx/pyproject.toml:4:") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadProjectMissingFiles(t *testing.T) {
	dir := t.TempDir()
	_, _, err := LoadProject(dir)
	if err == nil || !strings.Contains(err.Error(), "pyproject.toml") {
		t.Fatalf("no pyproject: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte("[project]\nname = \"x\"\nversion = \"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadProject(dir)
	if err == nil || !strings.Contains(err.Error(), "uv.lock") || !strings.Contains(err.Error(), "uv lock") {
		t.Fatalf("no lock: %v", err)
	}
}

func TestCheckOutOfDate(t *testing.T) {
	base, err := os.ReadFile("testdata/torch28/pyproject.toml")
	if err != nil {
		t.Fatal(err)
	}
	lockText, err := os.ReadFile("testdata/torch28/uv.lock")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := Parse("testdata/torch28/uv.lock", lockText)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string
	}{
		{"new dependency", `"numpy>=2.0",`, `"numpy>=2.0", "pandas>=2",`, []string{"pandas is in pyproject.toml but missing from the lock's root package", "uv lock"}},
		{"changed specifier", `"torch>=2.7.1"`, `"torch>=2.9"`, []string{"extra ml", "torch", ">=2.9", ">=2.7.1"}},
		{"removed dependency", `"fastapi>=0.115.0",`, ``, []string{"requires fastapi, which pyproject.toml no longer lists"}},
		{"new extra", `[dependency-groups]`, "ib = [\"ib-insync\"]\n[dependency-groups]", []string{"extra ib", "ib-insync"}},
		{"changed requires-python", `requires-python = ">=3.12,<3.14"`, `requires-python = ">=3.11"`, []string{"requires-python"}},
		{"renamed project", `name = "KTRDR"`, `name = "other"`, []string{`"other"`, "run `uv lock`"}},
		{"extra of a dependency", `"sqlalchemy[asyncio]>=2.0.0"`, `"sqlalchemy>=2.0.0"`, []string{"sqlalchemy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(string(base), tc.old, tc.new, 1)
			if text == string(base) {
				t.Fatalf("replacement %q not applied", tc.old)
			}
			proj, err := pyproject.Parse("testdata/torch28/pyproject.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			err = Check(proj, lock)
			if err == nil {
				t.Fatal("stale lock accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func FuzzParseLock(f *testing.F) {
	for _, p := range []string{"testdata/torch28/uv.lock", "testdata/torch-extras/uv.lock"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(smallLock))
	f.Add([]byte("version = 1\n[[package]]\nname = \"a\"\nsource = { editable = \".\" }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		defer func() {
			// A slow input is a finding too: the frontend reads locks
			// it is sent.
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%d bytes took %s", len(data), d)
			}
		}()
		lock, err := Parse("uv.lock", data)
		if err != nil {
			return
		}
		// A lock that parses must be walkable without panicking.
		for _, p := range lock.Packages {
			if !p.Source.IsProject() {
				continue
			}
			proj := &pyproject.Project{Path: "pyproject.toml", Name: p.Name}
			_, _ = Resolve(proj, lock, Request{Env: env(t, "amd64", "3.13")})
		}
	})
}
