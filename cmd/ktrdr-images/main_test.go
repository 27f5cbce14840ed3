package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The test binary doubles as the CLI: run with KTRDR_IMAGES_TEST_MAIN=1 it
// is ktrdr-images, so tests see real exit codes and streams.
func TestMain(m *testing.M) {
	if os.Getenv("KTRDR_IMAGES_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KTRDR_IMAGES_TEST_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
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

var example = filepath.Join("..", "..", "examples", "ktrdr")

func TestTargets(t *testing.T) {
	out, _, code := run(t, "targets")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, v := range []string{"backend-dev", "backend-prod", "worker-cpu", "worker-gpu"} {
		if !strings.Contains(out, v) {
			t.Errorf("targets lacks %s:\n%s", v, out)
		}
	}
	out, _, _ = run(t, "targets", "--format", "json")
	var got []targetJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 4 {
		t.Fatalf("json targets: %v %s", err, out)
	}
}

func TestRequirementsWorkerCPU(t *testing.T) {
	out, stderr, code := run(t, "requirements", "--context", example, "--variant", "worker-cpu", "--platform", "linux/amd64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) < 10 {
		t.Fatalf("only %d pins:\n%s", len(lines), out)
	}
	prev := ""
	torch := false
	for _, l := range lines {
		name, _, ok := strings.Cut(l, "==")
		if !ok {
			t.Errorf("line %q is not name==version", l)
		}
		if name <= prev {
			t.Errorf("not sorted: %s after %s", name, prev)
		}
		prev = name
		if strings.HasPrefix(name, "nvidia-") || name == "triton" {
			t.Errorf("worker-cpu pins %s", l)
		}
		if name == "torch" {
			torch = true
			if !strings.Contains(l, "+cpu") || !strings.Contains(l, "# index: https://download.pytorch.org/whl/cpu") {
				t.Errorf("torch line %q", l)
			}
		}
	}
	if !torch {
		t.Error("no torch pin")
	}
	// The same command twice prints the same bytes.
	again, _, _ := run(t, "requirements", "--context", example, "--variant", "worker-cpu", "--platform", "linux/amd64")
	if again != out {
		t.Error("output differs between runs")
	}
}

func TestRequirementsJSON(t *testing.T) {
	out, stderr, code := run(t, "requirements", "--context", example, "--variant", "worker-gpu", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r requirementsJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	nv := 0
	for _, p := range r.Packages {
		if strings.HasPrefix(p.Name, "nvidia-") {
			nv++
		}
	}
	if r.Torch != "cuda" || nv == 0 {
		t.Errorf("worker-gpu: torch %s, %d nvidia packages", r.Torch, nv)
	}
	out, _, _ = run(t, "requirements", "--context", example, "--variant", "worker-gpu", "--format", "json", "--cuda-from-base")
	r = requirementsJSON{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Dropped) != nv {
		t.Errorf("cuda from base dropped %d, want %d", len(r.Dropped), nv)
	}
}

func TestBadInput(t *testing.T) {
	empty := t.TempDir()
	badLock := t.TempDir()
	copyFile(t, filepath.Join(example, "pyproject.toml"), filepath.Join(badLock, "pyproject.toml"))
	if err := os.WriteFile(filepath.Join(badLock, "uv.lock"), []byte("version = 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown variant", []string{"requirements", "--context", example, "--variant", "worker-tpu"}, []string{"--variant", `"worker-tpu"`, "backend-dev, backend-prod, worker-cpu, worker-gpu"}},
		{"missing variant", []string{"requirements", "--context", example}, []string{"--variant is required"}},
		{"bad platform", []string{"requirements", "--context", example, "--variant", "worker-cpu", "--platform", "windows/amd64"}, []string{"platform", "windows/amd64", "linux/amd64 or linux/arm64"}},
		{"bad python", []string{"requirements", "--context", example, "--variant", "worker-cpu", "--python", "three"}, []string{"python", "three"}},
		{"python outside lock", []string{"requirements", "--context", example, "--variant", "worker-cpu", "--python", "3.11"}, []string{"requires-python"}},
		{"no pyproject", []string{"requirements", "--context", empty, "--variant", "worker-cpu"}, []string{"pyproject.toml"}},
		{"unknown lock version", []string{"requirements", "--context", badLock, "--variant", "worker-cpu"}, []string{"uv.lock", "version 7"}},
		{"gpu on arm64", []string{"requirements", "--context", example, "--variant", "worker-gpu", "--platform", "linux/arm64"}, []string{"worker-gpu", "linux/arm64", "CUDA"}},
		{"bad format", []string{"targets", "--format", "yaml"}, []string{"--format", "yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := run(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0; stdout:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPlan(t *testing.T) {
	args := []string{"plan", "--context", example, "--variant", "worker-cpu", "--format", "json"}
	a, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, _, _ := run(t, args...)
	if a != b {
		t.Error("plan printed different bytes for the same inputs")
	}
	var p struct {
		Variant string `json:"variant"`
		Layers  []string
		Ops     []struct {
			Digest string `json:"digest"`
			Name   string `json:"name"`
		} `json:"ops"`
	}
	if err := json.Unmarshal([]byte(a), &p); err != nil {
		t.Fatal(err)
	}
	if p.Variant != "worker-cpu" || len(p.Ops) < 10 || !strings.Contains(strings.Join(p.Layers, ","), "pkg torch") {
		t.Errorf("plan %+v", p)
	}
	layers, stderr, code := run(t, "plan", "--context", example, "--format", "layers")
	for _, want := range []string{
		"worker-cpu docker.io/library/ktrdr-worker-cpu:latest: 21 layers and its base's",
		"  scipy          29.5 MB        scipy==1.15.3",
		"no package is built from source: no toolchain",
	} {
		if code != 0 || !strings.Contains(layers, want) {
			t.Errorf("plan --format layers (exit %d, %s) lacks %q:\n%s", code, stderr, want, layers)
		}
	}
	if !regexp.MustCompile(`(?m)^  numpy +12\.7 MB +numpy==2\.2\.4 +backend-dev, backend-prod, worker-gpu$`).MatchString(layers) {
		t.Errorf("plan --format layers does not say which images share numpy's layer:\n%s", layers)
	}
	dot, stderr, code := run(t, "plan", "--context", example, "--format", "dot", "--opt", "installer=pip")
	if code != 0 || !strings.HasPrefix(dot, "digraph llb {") || strings.Count(dot, "[shape=ellipse") != 4 {
		t.Errorf("dot (exit %d, %s):\n%.300s", code, stderr, dot)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--context", example, "--opt", "uv-version=latest"}, "uv-version"},
		{[]string{"plan", "--context", example, "--opt", "nonsense"}, "KEY=VALUE"},
		{[]string{"plan", "--context", example, "--variant", "gpu"}, "--variant"},
		{[]string{"plan", "--context", example, "--format", "yaml"}, "--format"},
		{[]string{"plan", "--context", t.TempDir()}, "pyproject.toml"},
	} {
		out, stderr, code := run(t, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %.100q", tc.args, code, stderr, out)
		}
	}
}

func TestBuildWithoutDaemon(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "nothing.sock")
	_, stderr, code := run(t, "build", "--context", example, "--addr", sock)
	if code == 0 || !strings.Contains(stderr, "not reachable") || !strings.Contains(stderr, sock) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	// Bad input is refused before any daemon is contacted.
	_, stderr, code = run(t, "build", "--context", example, "--addr", sock, "--opt", "installer=poetry")
	if code == 0 || !strings.Contains(stderr, "option installer") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = run(t, "build", "--context", example, "--addr", sock, "--progress", "fancy")
	if code == 0 || !strings.Contains(stderr, "--progress") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
