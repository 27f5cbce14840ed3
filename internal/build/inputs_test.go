package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextSymlinks: a copied path that is a symlink out of the context
// (absolute, or relative climbing out) is an error naming the link and
// its target; a relative link inside the context counts as the path; a
// path .dockerignore excludes is absent.
func TestContextSymlinks(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "ctx")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "config"), filepath.Join(dir, "tests"), filepath.Join(dir, "deep", "pkg", "__pycache__")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"pyproject.toml", "uv.lock"} {
		dt, err := os.ReadFile(filepath.Join("..", "..", "examples", "ktrdr", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), dt, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("tests/\n**/__pycache__\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"strategies": "/etc",
		"alembic":    "../outside",
		"mcp":        "config",
		"README.md":  "missing.md",
		"ktrdr":      filepath.Join(dir, "config"),
		// Inside copied directories: out (absolute, climbing), in, and
		// out but excluded by .dockerignore.
		"config/shadow":              "/etc/shadow",
		"deep/pkg/up":                "../../../outside",
		"deep/pkg/sibling":           "../../config",
		"deep/pkg/__pycache__/x.pyc": "/etc/passwd",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	in, err := LocalInputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		ok   bool
		err  string
	}{
		{"config", false, "config/shadow is a symlink to /etc/shadow, outside the build context"},
		{"mcp", false, "config/shadow is a symlink to /etc/shadow"},
		{"deep", false, "deep/pkg/up is a symlink to ../../../outside, outside the build context"},
		{"tests", false, ""},
		{"strategies", false, "strategies is a symlink to /etc, outside the build context"},
		{"alembic", false, "alembic is a symlink to ../outside, outside the build context"},
		{"ktrdr", false, "outside the build context"},
		{"README.md", false, "README.md is a symlink to missing.md, which does not exist"},
		{"absent", false, ""},
	} {
		ok, err := in.Exists(tc.path)
		if ok != tc.ok || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Exists(%s) = %v, %v; want %v, %q", tc.path, ok, err, tc.ok, tc.err)
		}
	}
}

// TestFrontendContextSymlinks: the frontend refuses a symlink out of the
// context inside a copied directory, as the CLI does, reading the context
// BuildKit holds.
func TestFrontendContextSymlinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ktrdr")
	if out, err := exec.Command("cp", "-a", filepath.Join("..", "..", "examples", "ktrdr"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	opts := map[string]string{"target": "backend-prod", "build-arg:PROBE": "false"}
	if _, err := Frontend(context.Background(), &fakeGateway{opts: opts, dir: dir}); err != nil {
		t.Fatalf("the example itself: %v", err)
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(dir, "ktrdr", "leak")); err != nil {
		t.Fatal(err)
	}
	_, err := Frontend(context.Background(), &fakeGateway{opts: opts, dir: dir})
	if err == nil || !strings.Contains(err.Error(), "ktrdr/leak is a symlink to /etc/shadow, outside the build context (the main build context)") {
		t.Errorf("got %v", err)
	}
}
