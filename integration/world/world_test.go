package world

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/moby/buildkit/client/llb"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func logWorld(t *testing.T, w *World, took time.Duration) {
	t.Helper()
	for _, s := range w.Steps {
		t.Logf("  %-11s %-32s %s", s.Name, s.Outcome, s.Duration.Round(100*time.Millisecond))
	}
	t.Logf("  total %s", took.Round(100*time.Millisecond))
}

// The world comes up (from an empty cache directory on a fresh machine: the
// first Up of TestMain), and a second Up reuses every part of it.
func TestUpTwice(t *testing.T) {
	w := ForTest(t)
	first := "warm"
	if !w.Reused() {
		first = "cold or repaired"
	}
	t.Logf("first Up (%s), cache %s:", first, w.CacheDir)
	logWorld(t, w, UpTime())

	start := time.Now()
	again, err := Up(context.Background(), Options{})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	defer again.Close()
	t.Log("second Up:")
	logWorld(t, again, took)
	if !again.Reused() {
		t.Errorf("second Up did not reuse everything: %+v", again.Steps)
	}
	if took > 2*time.Minute {
		t.Errorf("second Up took %s", took)
	}
	if again.PythonBaseDigest != w.PythonBaseDigest || again.CUDABaseDigest != w.CUDABaseDigest {
		t.Errorf("base digests changed between two Ups")
	}
	for _, b := range w.Bases {
		t.Logf("base %s %s: %d layers, %.1f MB compressed, %d Debian packages, python %s", b.Ref, b.Digest, b.Layers, float64(b.Size)/1e6, b.Packages, b.Python)
	}
	var size int64
	for _, wh := range w.Wheels {
		size += wh.Size
	}
	t.Logf("index: %d wheels, %.1f MB", len(w.Wheels), float64(size)/1e6)
}

// Every package of examples/ktrdr/uv.lock has a wheel of exactly the locked
// version in the default index, the nvidia-* wheels and the CUDA torch
// included, and the CPU torch is on the CPU index with its local label;
// every wheel the lock records is one the index serves, with the sha256 and
// size the lock says (the lock was made by uv against this index).
func TestLockMatchesIndex(t *testing.T) {
	w := ForTest(t)
	lock, err := uvlock.Load(filepath.Join("..", "..", "examples", "ktrdr", "uv.lock"))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string][]Wheel{}
	byFile := map[string]Wheel{}
	for _, wh := range w.Wheels {
		served[wh.Name] = append(served[wh.Name], wh)
		byFile[path.Base(wh.File)] = wh
	}
	skippedArm := 0
	defer func() {
		if skippedArm > 0 {
			t.Logf("%d aarch64 wheels of the lock not checked: this world has no linux/arm64 half (%s)", skippedArm, w.Emulation.Why)
		}
	}()
	for _, p := range lock.Packages {
		name := normalize(p.Name)
		if p.Source.Editable != "" || p.Source.Virtual != "" {
			continue
		}
		want := []string{"simple " + p.Version}
		switch name {
		case "torch":
			want = append(want, "whl/cpu "+p.Version+"+cpu")
		case "scipy":
			// The second release the benchmark's big bump moves to.
			want = append(want, "simple "+BumpedScipy)
		}
		// One entry per index and version: the index serves a wheel of
		// each for linux/amd64 and, in a world with emulation, linux/arm64.
		var have []string
		seen := map[string]bool{}
		for _, wh := range served[name] {
			if k := wh.Index + " " + wh.Version; !seen[k] {
				seen[k] = true
				have = append(have, k)
			}
		}
		sort.Strings(have)
		sort.Strings(want)
		if strings.Join(have, ",") != strings.Join(want, ",") {
			t.Errorf("%s: the lock pins %s, the index serves %v, want %v", name, p.Version, have, want)
		}
		if len(p.Wheels) == 0 {
			t.Errorf("%s %s: the lock records no wheel (it was not made by uv against the index?)", name, p.Version)
		}
		for _, a := range p.Wheels {
			wh, ok := byFile[path.Base(a.URL)]
			switch {
			case !ok && !w.Emulation.Arm64 && strings.Contains(path.Base(a.URL), "aarch64"):
				// Served once the linux/arm64 half is up (make test-all).
				skippedArm++
			case !ok:
				t.Errorf("%s: the lock records %s, which the index does not serve", name, a.URL)
			case a.Hash != "sha256:"+wh.SHA256 || a.Size != wh.Size:
				t.Errorf("%s: the lock records %s as %s (%d bytes), the index serves sha256:%s (%d bytes): relock (examples/ktrdr/README.md)", name, path.Base(a.URL), a.Hash, a.Size, wh.SHA256, wh.Size)
			}
		}
	}
}

func pipEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"HOME=/root", "PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"}
}

func pipRun(st llb.State, name string, args ...string) llb.State {
	opts := []llb.RunOption{llb.Args(args), llb.WithCustomName(name)}
	for _, e := range pipEnv() {
		k, v, _ := strings.Cut(e, "=")
		opts = append(opts, llb.AddEnv(k, v))
	}
	return st.Run(opts...).Root()
}

func probe(t *testing.T, w *World, st llb.State, opts ProbeOptions, cmds ...Cmd) []Output {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "build.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	opts.Log = lf
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	outs, err := w.Probe(ctx, st, opts, cmds...)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, tail(logPath, 40))
	}
	t.Logf("built and probed in %s", time.Since(start).Round(100*time.Millisecond))
	return outs
}

// From the Python base: a venv, fastapi and the CPU torch pip-installed from
// the local index (nothing else reachable to pip), imported in a gateway
// container with no network.
func TestSmokePythonBaseCPUTorch(t *testing.T) {
	w := ForTest(t)
	st := llb.Image(w.PythonBase+"@"+w.PythonBaseDigest, llb.Platform(platform))
	st = pipRun(st, "venv + pip install fastapi torch (CPU index)", "/bin/sh", "-c",
		"python3 -m venv /venv && /venv/bin/pip install --index-url "+w.IndexURL+" --extra-index-url "+w.CPUIndexURL+" fastapi torch==2.6.0+cpu")
	outs := probe(t, w, st, ProbeOptions{}, Cmd{Args: []string{"/venv/bin/python", "-c", `
import json, fastapi, torch
print(json.dumps({"fastapi": fastapi.__version__, "torch": torch.__version__, "cuda": torch.version.cuda,
    "sum": float(torch.arange(4.0).sum())}))`}})
	out := outs[0]
	if out.ExitCode != 0 {
		t.Fatalf("import failed: %s", out)
	}
	var got struct {
		FastAPI, Torch string
		CUDA           *string
		Sum            float64
	}
	if err := json.Unmarshal([]byte(lastLine(out.Stdout)), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("fastapi %s, torch %s, torch.version.cuda %v", got.FastAPI, got.Torch, got.CUDA)
	if got.Torch != "2.6.0+cpu" || got.CUDA != nil || got.Sum != 6 {
		t.Errorf("want torch 2.6.0+cpu with no CUDA, got %+v", got)
	}
}

// cudaProbe installs torch==2.6.0 from the default index with pip into a
// venv of base (with its nvidia-* wheels unless noDeps) and reports, from
// its files, what it is: it cannot be imported without cuDNN and a driver.
func cudaProbe(t *testing.T, w *World, base llb.State, noDeps bool) map[string][]string {
	t.Helper()
	deps := ""
	if noDeps {
		deps = " --no-deps"
	}
	st := pipRun(base, "venv + pip install torch (default index)", "/bin/sh", "-c",
		"python3 -m venv /venv && /venv/bin/pip install"+deps+" --index-url "+w.IndexURL+" torch==2.6.0")
	script := `set -e
site=$(echo /venv/lib/python3*/site-packages)
/venv/bin/pip show torch | sed -n 's/^Version: /version=/p'
/venv/bin/pip list --format freeze | sed -n 's/^\(nvidia-[^=]*\)==.*/nvidia=\1/p'
sed -n "s/^cuda[^=]*= *'\(.*\)'/cuda=\1/p" $site/torch/version.py
ls $site/torch/lib/libtorch_cuda.so* >/dev/null && echo libtorch_cuda=present
find $site -name '*.so*' -type f | while read f; do ldd "$f" | sed -n "s|^\s*\(\S*\) => not found|\1|p"; done | sort -u | sed 's/^/missing=/'
ldd $site/torch/lib/libtorch_cuda.so* | sed -n "s|^\s*\(lib[A-Za-z]*\.so\.[0-9]*\) => \(\S*\).*|resolved=\1:\2|p"
`
	outs := probe(t, w, st, ProbeOptions{}, Cmd{Args: []string{"/bin/sh", "-c", script}})
	out := outs[0]
	if out.ExitCode != 0 {
		t.Fatalf("probe failed: %s", out)
	}
	t.Logf("probe:\n%s", out.Stdout)
	facts := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.Stdout), "\n") {
		k, v, _ := strings.Cut(line, "=")
		if lib, where, ok := strings.Cut(v, ":"); ok && k == "resolved" && strings.HasPrefix(where, "/") {
			v = lib + ":" + path.Clean(where) // torch/lib/../../nvidia/... as the rpath gives it
		}
		facts[k] = append(facts[k], v)
	}
	if got := strings.Join(facts["version"], ","); got != "2.6.0" {
		t.Errorf("torch version %q, want 2.6.0 (PyPI's CUDA torch has no local label)", got)
	}
	if got := strings.Join(facts["cuda"], ","); !strings.HasPrefix(got, cudaVersion) {
		t.Errorf("torch/version.py cuda = %q, want %s.x", got, cudaVersion)
	}
	if len(facts["libtorch_cuda"]) == 0 {
		t.Error("torch/lib/libtorch_cuda.so is missing")
	}
	for _, m := range facts["missing"] {
		if !strings.HasPrefix(m, "libcudnn") && m != "libcuda.so.1" {
			t.Errorf("NEEDED library %s does not resolve", m)
		}
	}
	return facts
}

// From the bare python base, as KTRDR's worker-gpu: the CUDA torch of the
// default index pulls the nvidia-* wheels (cuDNN's a stand-in) and finds
// every CUDA library in them, by rpath, as PyPI's torch does.
func TestSmokePythonBaseCUDAWheels(t *testing.T) {
	w := ForTest(t)
	facts := cudaProbe(t, w, llb.Image(w.PythonBase+"@"+w.PythonBaseDigest, llb.Platform(platform)), false)
	if got := len(facts["nvidia"]); got != len(nvidiaWheels)+1 {
		t.Errorf("pip installed %d nvidia-* wheels (%v), want %d", got, facts["nvidia"], len(nvidiaWheels)+1)
	}
	resolved := strings.Join(facts["resolved"], " ")
	for _, lib := range []string{"libcudart.so.12:/venv/lib/python3.13/site-packages/nvidia/cuda_runtime/lib/", "libcublas.so.12:/venv/lib/python3.13/site-packages/nvidia/cublas/lib/"} {
		if !strings.Contains(resolved, lib) {
			t.Errorf("libtorch_cuda.so: want %s..., got %s", lib, resolved)
		}
	}
}

// From the CUDA base, torch alone (--no-deps, as worker-gpu's CUDA-base
// mode installs it): the same torch finds CUDA in the base's /usr/lib.
func TestSmokeCUDABaseCUDATorch(t *testing.T) {
	w := ForTest(t)
	facts := cudaProbe(t, w, llb.Image(w.CUDABase+"@"+w.CUDABaseDigest, llb.Platform(platform)), true)
	if len(facts["nvidia"]) != 0 {
		t.Errorf("nvidia-* wheels installed with --no-deps: %v", facts["nvidia"])
	}
	resolved := strings.Join(facts["resolved"], " ")
	for _, lib := range []string{"libcudart.so.12", "libcublas.so.12"} {
		if !strings.Contains(resolved, lib+":/usr/lib/") && !strings.Contains(resolved, lib+":/lib/x86_64-linux-gnu/") {
			t.Errorf("libtorch_cuda.so: want %s... (the base's CUDA runtime), got %s", lib, resolved)
		}
	}
}

// The example app's own tests pass in a venv made from the local index:
// the backend-dev set (ml extra with CPU torch, dev group) pinned from
// uv.lock, then the project itself built with hatchling from the index. A
// worker is also started with uvicorn and its health endpoints queried.
func TestExampleAppTests(t *testing.T) {
	w := ForTest(t)
	example, err := filepath.Abs(filepath.Join("..", "..", "examples", "ktrdr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "../../cmd/ktrdr-images", "requirements", "--context", example,
		"--variant", "backend-dev", "--cpu-index", w.CPUIndexURL)
	reqs, err := cmd.Output()
	if err != nil {
		t.Fatalf("ktrdr-images requirements: %v", err)
	}
	st := llb.Image(w.PythonBase+"@"+w.PythonBaseDigest, llb.Platform(platform)).
		File(llb.Mkfile("/requirements.txt", 0o644, reqs)).
		File(llb.Copy(llb.Local("example", llb.ExcludePatterns([]string{".venv", "**/__pycache__", ".pytest_cache", ".mypy_cache"})), "/", "/src/", &llb.CopyInfo{CreateDestPath: true}))
	st = pipRun(st, "venv from the local index: uv.lock's backend-dev set, then the project", "/bin/sh", "-c",
		"set -e; python3 -m venv /venv; "+
			"/venv/bin/pip install --no-deps --index-url "+w.IndexURL+" --extra-index-url "+w.CPUIndexURL+" -r /requirements.txt; "+
			"/venv/bin/pip install --no-deps --index-url "+w.IndexURL+" /src; /venv/bin/pip check")
	outs := probe(t, w, st, ProbeOptions{LocalDirs: map[string]string{"example": example}},
		Cmd{Args: []string{"/venv/bin/python", "-m", "pytest", "-v", "-p", "no:cacheprovider"}, Dir: "/src"},
		Cmd{Args: []string{"/bin/sh", "-c", `set -e
cd /tmp
/venv/bin/uvicorn ktrdr.training.training_worker_api:app --host 127.0.0.1 --port 5002 >/tmp/uvicorn.log 2>&1 &
pid=$!
/venv/bin/python - <<'EOF'
import json, time, urllib.request
for i in range(100):
    try:
        health = json.load(urllib.request.urlopen("http://127.0.0.1:5002/health", timeout=2))
        break
    except OSError:
        time.sleep(0.2)
else:
    raise SystemExit("the training worker did not answer: " + open("/tmp/uvicorn.log").read())
print("health", json.dumps(health))
print("device", json.dumps(json.load(urllib.request.urlopen("http://127.0.0.1:5002/device", timeout=30))))
EOF
kill $pid`}})
	if outs[0].ExitCode != 0 {
		t.Fatalf("pytest failed: %s", outs[0])
	}
	t.Logf("pytest:\n%s", outs[0].Stdout)
	if outs[1].ExitCode != 0 {
		t.Fatalf("training worker: %s", outs[1])
	}
	t.Logf("training worker under uvicorn:\n%s", outs[1].Stdout)
	if !strings.Contains(outs[1].Stdout, `"healthy": true`) || !strings.Contains(outs[1].Stdout, `"flavour": "cpu"`) {
		t.Errorf("unexpected answers: %s", outs[1].Stdout)
	}
}

// A corrupt cache is repaired by the next Up: a truncated wheel makes the
// index be built again (from buildkitd's cache when it still has it), and
// the wheel comes back byte for byte (the wheelhouse is deterministic).
// Only the cache directory is touched, so concurrent users of the world
// are not disturbed (colorama is only installed on Windows).
func TestRepairsCorruptCache(t *testing.T) {
	w := ForTest(t)
	var victim Wheel
	for _, wh := range w.Wheels {
		if wh.Name == "colorama" {
			victim = wh
		}
	}
	if victim.File == "" {
		t.Fatal("no colorama wheel in the index")
	}
	wheelPath := filepath.Join(w.CacheDir, "index", "current", victim.File)
	if err := os.Truncate(wheelPath, victim.Size/2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	again, err := Up(context.Background(), Options{})
	if err != nil {
		t.Fatalf("Up after corruption: %v", err)
	}
	defer again.Close()
	logWorld(t, again, time.Since(start))
	for _, s := range again.Steps {
		if s.Name == "index" && s.Outcome != "built" {
			t.Errorf("index: %q, want built again", s.Outcome)
		}
	}
	sum, err := sha256File(wheelPath)
	if err != nil || sum != victim.SHA256 {
		t.Errorf("%s not restored byte for byte (sha256 %s, want %s, %v)", victim.File, sum, victim.SHA256, err)
	}
	if len(again.Wheels) != len(w.Wheels) {
		t.Fatalf("%d wheels after the repair, %d before", len(again.Wheels), len(w.Wheels))
	}
	for i, wh := range again.Wheels {
		if wh != w.Wheels[i] {
			t.Errorf("wheel changed in the rebuild: %+v, was %+v", wh, w.Wheels[i])
		}
	}
}

// A foreign process on a service's endpoint is reported with its pid, and
// nothing is started. Runs without the world.
func TestForeignListenerIsReported(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	l := layout{root: t.TempDir(), registry: RegistryAddr, index: IndexAddr}
	if err := l.ensure(); err != nil {
		t.Fatal(err)
	}
	s := &service{
		name: "registry", argv: []string{"/bin/false"}, marker: filepath.Join(l.root, "registry", "config.yml"),
		endpoint: addr, inUse: inUse("tcp", addr),
		healthy: func(context.Context) error { return nil },
	}
	_, err = ensureService(context.Background(), l, s)
	if err == nil {
		t.Fatal("ensureService started over a foreign listener")
	}
	msg := err.Error()
	for _, want := range []string{addr, "already in use", "not the ktrdr-images registry"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	t.Log(msg)
}

// A service that exits at once is reported with the last lines of its log.
func TestServiceFailureShowsLog(t *testing.T) {
	l := layout{root: t.TempDir(), registry: RegistryAddr, index: IndexAddr}
	if err := l.ensure(); err != nil {
		t.Fatal(err)
	}
	s := &service{
		name: "registry", argv: []string{"/bin/sh", "-c", "echo 'listen tcp: address already in use' >&2; exit 3"},
		marker: "nothing", endpoint: "127.0.0.1:1", inUse: func() bool { return false },
		healthy: func(context.Context) error { return net.ErrClosed },
	}
	_, err := ensureService(context.Background(), l, s)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"starting registry", "exited", l.logFile("registry"), "address already in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// The committed uv.lock of each example (examples/ktrdr, examples/signals)
// is what uv lock makes of its pyproject.toml against this index now:
// re-locked in a temp dir (as `ktrdr-world lock examples/NAME` does), it
// comes out byte for byte the same; a stale lock fails with the diff.
// withoutAarch64 is a uv.lock without its lines naming aarch64 wheels.
func withoutAarch64(lock []byte) string {
	var keep []string
	for _, l := range strings.Split(string(lock), "\n") {
		if !(strings.Contains(l, "url = ") && strings.Contains(l, "aarch64") && strings.HasSuffix(strings.TrimSpace(l), "},")) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestExampleLockIsCurrent(t *testing.T) {
	w := ForTest(t)
	for _, app := range []string{"ktrdr", "signals"} {
		t.Run(app, func(t *testing.T) {
			src := filepath.Join("..", "..", "examples", app)
			dir := t.TempDir()
			for _, f := range []string{"pyproject.toml", "uv.lock"} {
				b, err := os.ReadFile(filepath.Join(src, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			got, err := w.Lock(ctx, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join(src, "uv.lock"))
			if string(got) == string(want) {
				return
			}
			// A world without its linux/arm64 half serves no aarch64
			// wheels, so uv records none: the rest must be the same
			// (make test-all compares all of it).
			if !w.Emulation.Arm64 && withoutAarch64(got) == withoutAarch64(want) {
				t.Logf("examples/%s/uv.lock is current but for its aarch64 wheels, which this world does not serve (%s)", app, w.Emulation.Why)
				return
			}
			fresh := filepath.Join(dir, "uv.lock.new")
			os.WriteFile(fresh, got, 0o644)
			diff, _ := exec.Command("diff", "-u", filepath.Join(src, "uv.lock"), fresh).CombinedOutput()
			t.Errorf("examples/%s/uv.lock is stale: %s gives another lock; run `go run ./integration/world/cmd/ktrdr-world lock examples/%s` and commit it:\n%s", app, w.LockCommand(), app, diff)
		})
	}
}

// What the real uv does with an index option under --frozen, the fact the
// uv installer's mirror mode rests on (llb.UV.mirror): uv sync --frozen
// downloads every package from the URL the lock records, and
// UV_INDEX_URL, --index-url and --default-index naming another server (the
// same index on a second address) change nothing: that server is never
// asked. If a uv release changes this, this test says so.
func TestUVFrozenIgnoresIndexOptions(t *testing.T) {
	w := ForTest(t)
	m, err := w.StartMirror("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	src := filepath.Join("..", "..", "examples", "ktrdr")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, c := range []struct{ name, env, flag string }{
		{"UV_INDEX_URL", "UV_INDEX_URL=" + m.URL + " ", ""},
		{"--index-url", "", " --index-url " + m.URL},
		{"--default-index", "", " --default-index " + m.URL},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.Reset()
			out := t.TempDir()
			script := "uv venv -q /tmp/v && " + c.env + "UV_PROJECT_ENVIRONMENT=/tmp/v uv sync --frozen --no-install-project --no-default-groups" + c.flag +
				" > /work/sync.log 2>&1; echo $? > /work/rc; /tmp/v/bin/python -c 'import fastapi' >> /work/sync.log 2>&1 && echo imported >> /work/rc"
			if err := w.UVRun(ctx, src, []string{"pyproject.toml", "uv.lock"}, script, out, nil); err != nil {
				t.Fatal(err)
			}
			rc, _ := os.ReadFile(filepath.Join(out, "rc"))
			logb, _ := os.ReadFile(filepath.Join(out, "sync.log"))
			if strings.TrimSpace(string(rc)) != "0\nimported" {
				t.Fatalf("uv sync --frozen failed (%q):\n%s", rc, logb)
			}
			if n := len(m.Requests()); n != 0 {
				t.Errorf("uv sync --frozen with %s asked the other index %d times: uv now honours it, and llb.UV's mirror mode may no longer be needed", c.name, n)
			}
		})
	}
}
