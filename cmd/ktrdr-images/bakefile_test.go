package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runIn is run with the working directory dir.
func runIn(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KTRDR_IMAGES_TEST_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

const regenerate = "go run ./cmd/ktrdr-images bake-file --context examples/ktrdr --output docker-bake.hcl"

// TestBakeFileIsCurrent: the repository's docker-bake.hcl is what
// bake-file writes for examples/ktrdr, byte for byte.
func TestBakeFileIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	out, stderr, code := runIn(t, root, "bake-file", "--context", "examples/ktrdr")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	committed, err := os.ReadFile(filepath.Join(root, "docker-bake.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(committed) {
		got, want := strings.Split(out, "\n"), strings.Split(string(committed), "\n")
		line := 0
		for line < len(got) && line < len(want) && got[line] == want[line] {
			line++
		}
		at := func(ls []string) string {
			if line < len(ls) {
				return ls[line]
			}
			return "(end of file)"
		}
		t.Fatalf("docker-bake.hcl is not what bake-file generates (line %d: %q, generated %q): run `%s` at the repository's root and commit it",
			line+1, at(want), at(got), regenerate)
	}
}

// TestBakeFileOutput writes a project's own spec to a file in another
// directory: CONTEXT is relative to that directory, the CUDA image is
// amd64-only, and the header's command writes the same file again.
func TestBakeFileOutput(t *testing.T) {
	dir := t.TempDir()
	proj := filepath.Join(dir, "proj")
	if err := os.MkdirAll(filepath.Join(dir, "ci"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(example, "uv.lock"), filepath.Join(proj, "uv.lock"))
	py, err := os.ReadFile(filepath.Join(example, "pyproject.toml"))
	if err != nil {
		t.Fatal(err)
	}
	py = append(py, []byte(`
[tool.ktrdr-images]
registry = "registry.example/quant"

[[tool.ktrdr-images.image]]
name = "api"
image = "quant-api:stable"
app = "ktrdr.api.main:app"
port = 8000

[[tool.ktrdr-images.image]]
name = "trainer"
extras = ["ml"]
torch = "cuda"
command = ["python", "-m", "ktrdr.training"]
`)...)
	if err := os.WriteFile(filepath.Join(proj, "pyproject.toml"), py, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runIn(t, dir, "bake-file", "--context", "proj", "--output", "ci/docker-bake.hcl")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q: %s", code, out, stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "ci", "docker-bake.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	for _, want := range []string{
		"#   ktrdr-images bake-file --context ../proj --output docker-bake.hcl\n",
		"variable \"REGISTRY\" {\n  default = \"registry.example/quant\"\n}\n",
		"variable \"CONTEXT\" {\n  default = \"../proj\"\n}\n",
		"group \"default\" {\n  targets = [\"api\", \"trainer\"]\n}\n",
		"target \"_ktrdr\" {\n",
		"target \"api\" {\n  inherits = [\"_ktrdr\"]\n  target   = \"api\"\n  tags     = [\"${REGISTRY}/quant-api:stable\"]\n}\n",
		"target \"trainer\" {\n  inherits  = [\"_ktrdr\"]\n  target    = \"trainer\"\n  tags      = [\"${REGISTRY}/trainer:${TAG}\"]\n  platforms = [\"linux/amd64\"]\n}\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	// The header's command, run where the file is, writes the same bytes.
	if _, stderr, code := runIn(t, filepath.Join(dir, "ci"), "bake-file", "--context", "../proj", "--output", "docker-bake.hcl"); code != 0 {
		t.Fatalf("again: exit %d: %s", code, stderr)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "ci", "docker-bake.hcl"))
	if string(again) != got {
		t.Errorf("the header's command gives other bytes:\n%s", again)
	}
}

func TestBakeFileErrors(t *testing.T) {
	empty := t.TempDir()
	badSpec := t.TempDir()
	copyFile(t, filepath.Join(example, "uv.lock"), filepath.Join(badSpec, "uv.lock"))
	py, err := os.ReadFile(filepath.Join(example, "pyproject.toml"))
	if err != nil {
		t.Fatal(err)
	}
	py = append(py, []byte("\n[tool.ktrdr-images]\n\n[[tool.ktrdr-images.image]]\nname = \"api\"\ncommand = [\"a\"]\nimage = \"Bad:Name\"\n")...)
	if err := os.WriteFile(filepath.Join(badSpec, "pyproject.toml"), py, 0o644); err != nil {
		t.Fatal(err)
	}
	unknownKey := t.TempDir()
	copyFile(t, filepath.Join(example, "uv.lock"), filepath.Join(unknownKey, "uv.lock"))
	if err := os.WriteFile(filepath.Join(unknownKey, "pyproject.toml"), append(py[:len(py):len(py)], []byte("platform = \"x\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "docker-bake.hcl")
	if err := os.WriteFile(out, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no pyproject", []string{"bake-file", "--context", empty}, []string{filepath.Join(empty, "pyproject.toml"), "no pyproject.toml here"}},
		{"bad image", []string{"bake-file", "--context", badSpec, "--output", out}, []string{filepath.Join(badSpec, "pyproject.toml") + ":", `image "api", key image: "Bad:Name": expected an image name, repository[:tag]`}},
		{"unknown key", []string{"bake-file", "--context", unknownKey, "--output", out}, []string{filepath.Join(unknownKey, "pyproject.toml") + ":", "unknown key platform"}},
		{"output dir missing", []string{"bake-file", "--context", example, "--output", filepath.Join(empty, "no", "docker-bake.hcl")}, []string{"option --output", filepath.Join(empty, "no", "docker-bake.hcl")}},
		{"empty output", []string{"bake-file", "--output", ""}, []string{"option --output", "- for stdout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0; stdout:\n%s", stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	if data, _ := os.ReadFile(out); string(data) != "keep\n" {
		t.Errorf("a failed run changed the output file: %q", data)
	}
}
