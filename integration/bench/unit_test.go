package bench

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
)

// copyExample copies examples/ktrdr to a fresh directory and returns it.
func copyExample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ktrdr")
	copyExampleTo(t, dir)
	return dir
}

// copyExampleTo copies examples/ktrdr to dir, which must not exist (its
// parent must).
func copyExampleTo(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", example, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the example: %v: %s", err, out)
	}
}

func pins(t *testing.T, dir, variant string) map[string]string {
	t.Helper()
	proj, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := variants.Lookup(variant)
	res, err := v.Pins(proj, lock, variants.Target{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range res.Pins {
		out[p.Name] = p.Version
	}
	return out
}

// Each dependency change keeps the lock valid (uvlock.Check, inside
// MoveToRuntime), moves the package into backend-prod, and leaves
// backend-dev's set as it was.
func TestMoveToRuntime(t *testing.T) {
	dir := copyExample(t)
	dev := pins(t, dir, variants.BackendDev)
	for _, pkg := range DepMoves {
		if _, ok := pins(t, dir, variants.BackendProd)[pkg]; ok {
			t.Fatalf("%s is already a runtime dependency", pkg)
		}
		if err := MoveToRuntime(dir, "dev", pkg); err != nil {
			t.Fatal(err)
		}
		if _, ok := pins(t, dir, variants.BackendProd)[pkg]; !ok {
			t.Errorf("after moving %s, backend-prod does not install it", pkg)
		}
		if got := pins(t, dir, variants.BackendDev); len(got) != len(dev) {
			t.Errorf("after moving %s, backend-dev installs %d packages, was %d", pkg, len(got), len(dev))
		}
	}
	if err := MoveToRuntime(dir, "dev", "black"); err == nil || !strings.Contains(err.Error(), "no requirement on black") {
		t.Errorf("moving black twice: %v", err)
	}
	py, _ := os.ReadFile(filepath.Join(dir, "pyproject.toml"))
	if !strings.Contains(string(py), `"black>=24.1",`) {
		t.Errorf("pyproject.toml lost black's specifier:\n%s", py)
	}
}

func TestCodeChange(t *testing.T) {
	dir := copyExample(t)
	f := filepath.Join(dir, "ktrdr", "api", "main.py")
	before, _ := os.ReadFile(f)
	if err := CodeChange(dir, 7); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(f)
	if string(after) != string(before)+"# benchmark change 7\n" {
		t.Errorf("code change wrote %q", strings.TrimPrefix(string(after), string(before)))
	}
}

// testOptions are the world's BuildOptions: the default path, only the
// locations changed.
func testOptions() variants.Options {
	o := variants.DefaultOptions()
	o.PythonBase = "127.0.0.1:5000/library/python:3.13-slim"
	o.UVImage, o.UVVersion = "127.0.0.1:5000/astral-sh/uv", "0.9.17"
	o.IndexURL = "http://127.0.0.1:3141/simple"
	o.CPUIndexURL = "http://127.0.0.1:3141/whl/cpu"
	return o
}

// The baseline's requirements are ours' pins: CPU torch from the CPU index
// for the CPU variants, no torch in backend-prod, CUDA torch from the
// default index with its nvidia-* wheels in worker-gpu.
func TestWriteRequirements(t *testing.T) {
	out := t.TempDir()
	o := testOptions()
	if err := WriteRequirements(example, out, o); err != nil {
		t.Fatal(err)
	}
	read := func(v string) string {
		dt, err := os.ReadFile(filepath.Join(out, v+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		return string(dt)
	}
	for _, v := range []string{variants.WorkerCPU, variants.BackendDev} {
		s := read(v)
		if !strings.Contains(s, "\n--extra-index-url "+o.CPUIndexURL+"\n") || !strings.Contains(s, "\ntorch==2.6.0+cpu\n") {
			t.Errorf("%s:\n%s", v, s)
		}
		if strings.Contains(s, "nvidia") {
			t.Errorf("%s installs nvidia-* wheels", v)
		}
	}
	if s := read(variants.BackendProd); strings.Contains(s, "torch") || strings.Contains(s, "index-url") {
		t.Errorf("backend-prod:\n%s", s)
	}
	g := read(variants.WorkerGPU)
	if strings.Contains(g, "index-url") || !strings.Contains(g, "\ntorch==2.6.0\n") || !strings.Contains(g, "\nnvidia-cublas-cu12==12.4.5.8\n") {
		t.Errorf("worker-gpu:\n%s", g)
	}
	// The same pins as ours: count the lines.
	for _, v := range variants.Names() {
		lines := 0
		for _, l := range strings.Split(read(v), "\n") {
			if strings.Contains(l, "==") {
				lines++
			}
		}
		vv, _ := variants.Lookup(v)
		proj, lock, _ := uvlock.LoadProject(example)
		res, err := vv.Pins(proj, lock, variants.Target{CUDAFromBase: vv.CUDABase && o.CUDABase != "", CPUIndex: o.CPUIndexURL, CUDAIndex: o.CUDAIndexURL})
		if err != nil {
			t.Fatal(err)
		}
		if lines != len(res.Pins) {
			t.Errorf("%s: %d pins written, ours has %d", v, lines, len(res.Pins))
		}
	}
}

// The baseline Dockerfiles parse, take the build args, copy their own
// requirements file and keep the seed's shape.
func TestBaselineDockerfiles(t *testing.T) {
	for v, file := range BaselineFiles {
		dt, err := os.ReadFile(filepath.Join(dockerfiles, file))
		if err != nil {
			t.Fatal(err)
		}
		res, err := parser.Parse(strings.NewReader(string(dt)))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		stages, metaArgs, err := instructions.Parse(res.AST, nil)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var args []string
		for _, a := range metaArgs {
			for _, kv := range a.Args {
				args = append(args, kv.Key)
			}
		}
		if len(args) == 0 || args[0] != "PYTHON_BASE" {
			t.Errorf("%s: meta args %v, want PYTHON_BASE first", file, args)
		}
		text := string(dt)
		if !strings.Contains(text, "COPY --from=requirements "+v+".txt ") {
			t.Errorf("%s does not copy %s.txt from the requirements context", file, v)
		}
		// The uv stage (FROM UV_IMAGE, copied from), then KTRDR's stages.
		wantStages := 3
		if v == variants.BackendDev {
			wantStages = 2
		}
		if stages[0].Name != "uv" || !strings.Contains(text, "COPY --from=uv /uv /usr/local/bin/uv") || strings.Contains(text, "pip --python") {
			t.Errorf("%s does not install with uv from the UV_IMAGE stage", file)
		}
		if len(stages) != wantStages {
			t.Errorf("%s: %d stages, want %d", file, len(stages), wantStages)
		}
		if v == variants.WorkerGPU && !strings.Contains(text, "FROM ${PYTHON_BASE} AS runtime") {
			t.Errorf("%s: the runtime stage is not on PYTHON_BASE (CUDA from the nvidia-* wheels)", file)
		}
		if strings.Contains(text, "nvidia") && !strings.Contains(text, "nvidia-*") {
			t.Errorf("%s mentions nvidia packages", file)
		}
	}
}

func TestPushCounter(t *testing.T) {
	var got int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got += n
		if r.Host == "" {
			t.Error("no Host header upstream")
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Get("mount") != "":
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPut:
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer up.Close()
	p, err := NewPushCounter(strings.TrimPrefix(up.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	do := func(method, path, body string) {
		req, _ := http.NewRequest(method, "http://"+p.Host+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do(http.MethodPatch, "/v2/ns/img/blobs/uploads/u1", strings.Repeat("x", 1000))
	do(http.MethodPut, "/v2/ns/img/blobs/uploads/u1?digest=sha256:00", "yy")
	do(http.MethodPost, "/v2/ns/img/blobs/uploads/?mount=sha256:11&from=ns/other", "")
	do(http.MethodGet, "/v2/ns/img/blobs/sha256:00", "")
	s := p.Reset()
	if s.Bytes != 1002 || s.Blobs != 1 || s.Mounts != 1 || got != 1002 || !slices.Equal(s.Digests, []string{"sha256:00"}) {
		t.Errorf("counted %+v, upstream got %d bytes", s, got)
	}
	if s := p.Reset(); s.Bytes != 0 || s.Blobs != 0 || s.Mounts != 0 || len(s.Digests) != 0 {
		t.Errorf("after Reset: %+v", s)
	}
}

func TestReadProgress(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t1, t2 := t0.Add(2*time.Second), t0.Add(5*time.Second)
	va, vb := digest.FromString("a"), digest.FromString("b")
	sts := []client.SolveStatus{
		{Vertexes: []*client.Vertex{{Digest: va, Name: "[x] load build context", Started: &t0}}},
		{Statuses: []*client.VertexStatus{{ID: "transferring context:", Vertex: va, Name: "transferring", Current: 100}}},
		{Statuses: []*client.VertexStatus{{ID: "transferring context:", Vertex: va, Name: "transferring", Current: 300}}},
		{Statuses: []*client.VertexStatus{{ID: "transferring dockerfile:", Vertex: va, Name: "transferring", Current: 20}}},
		{Statuses: []*client.VertexStatus{{ID: "other", Vertex: va, Name: "extracting", Current: 9999}}},
		{Vertexes: []*client.Vertex{{Digest: va, Name: "[x] load build context", Started: &t0, Completed: &t1}}},
		{Vertexes: []*client.Vertex{{Digest: vb, Name: "RUN x", Started: &t0, Completed: &t2, Cached: true}}},
	}
	path := filepath.Join(t.TempDir(), "p.jsonl")
	f, _ := os.Create(path)
	enc := json.NewEncoder(f)
	for _, s := range sts {
		enc.Encode(s)
	}
	f.Close()
	p, err := ReadProgress(path, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if p.ContextBytes != 320 || p.Cached() != 1 {
		t.Errorf("context %d bytes, %d cached", p.ContextBytes, p.Cached())
	}
	// Started before the build: counted from its start.
	if ran := p.Ran(); len(ran) != 1 || ran[0].Duration != time.Second {
		t.Errorf("ran %+v", ran)
	}
}

func TestResults(t *testing.T) {
	r := NewResults()
	for _, v := range []float64{3, 1, 2} {
		r.Add("cold_s", Ours, "s", v)
	}
	for _, v := range []float64{4, 8} {
		r.Add("cold_s", Baseline, "s", v)
	}
	r.Add("graph_marshal_ns", Ours, "ns", 1234)
	rows := r.Rows()
	if rows[0].Ours != (Summary{N: 3, Min: 1, Median: 2, Max: 3}) || rows[0].Baseline.Median != 6 || math.Abs(rows[0].Ratio-1.0/3) > 1e-9 {
		t.Errorf("%+v", rows[0])
	}
	if !math.IsNaN(rows[1].Ratio) {
		t.Errorf("ratio without a baseline: %v", rows[1].Ratio)
	}
	dir := t.TempDir()
	if err := r.WriteCSV(dir); err != nil {
		t.Fatal(err)
	}
	dt, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	want := "metric,ours_median,baseline_median,ratio,unit\ncold_s,2,6,0.333,s\ngraph_marshal_ns,1234,,,ns\n"
	if string(dt) != want {
		t.Errorf("results.csv:\n%s\nwant:\n%s", dt, want)
	}
	back, err := ReadDetailCSV(filepath.Join(dir, "results-detail.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Rows(); got[0].Ours.Median != 2 || got[0].Baseline.Median != 6 || got[1].Ours.Median != 1234 {
		t.Errorf("read back %+v", got)
	}
	if err := r.WritePNG(filepath.Join(dir, "r.png"), "test", chartGroups(variants.Names())); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "r.png")); err != nil || fi.Size() == 0 {
		t.Errorf("no chart: %v", err)
	}
}

func TestCheckFree(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFree(dir, 0); err != nil {
		t.Fatalf("0 GiB needed: %v", err)
	}
	err := CheckFree(dir, 1<<20) // a pebibyte
	if err == nil {
		t.Fatal("a pebibyte needed: no error")
	}
	for _, want := range []string{dir, "KTRDR_BENCH_MIN_FREE_GB", "GiB free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := FreeBytes(filepath.Join(dir, "missing")); err == nil {
		t.Error("free space of a missing directory: no error")
	}
}
