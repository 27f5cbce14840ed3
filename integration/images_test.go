// Package integration holds the tests that build KTRDR's four images for
// real, on the offline world (integration/world): buildkitd with runc, a
// registry on 127.0.0.1, Debian-made base images and a local package index.
// They probe the images from the inside and read what the registry stores.
// Under -short they skip.
package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/ktrdr/ktrdr-images/variants"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMain(m *testing.M) { os.Exit(world.Main(m)) }

var example = filepath.Join("..", "examples", "ktrdr")

// offline are the options that point the build at the offline world.
func offline(w *world.World, namespace string) variants.Options { return w.BuildOptions(namespace) }

type buildArgs struct {
	dir      string
	variants []string
	// platforms are build --platform's list (none: opts.Platform).
	platforms []string
	opts      variants.Options
	probe     bool
	push      bool
	noCache   bool
	// The supply-chain flags (build --sbom, --sbom-out, --provenance,
	// --secret, --export-cache).
	sbom        bool
	sbomOut     string
	provenance  string
	secrets     []string
	exportCache []string
	// build --push-timeout.
	pushTimeout time.Duration
}

func runBuild(t *testing.T, w *world.World, a buildArgs) (*build.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c, err := w.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	logPath := filepath.Join(t.TempDir(), "progress.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := time.Now()
	rep, err := build.Run(ctx, c, build.RunOptions{
		ContextDir: a.dir, Variants: a.variants, Options: a.opts, Platforms: a.platforms,
		Probe: a.probe, Push: a.push, Inspect: a.push, NoCache: a.noCache,
		Progress: "plain", ProgressOut: logf,
		SBOM: a.sbom, SBOMOut: a.sbomOut, Provenance: a.provenance, Secrets: a.secrets, ExportCache: a.exportCache,
	})
	t.Logf("build of %v took %s", a.variants, time.Since(start).Round(time.Second))
	if err != nil {
		if dt, rerr := os.ReadFile(logPath); rerr == nil {
			t.Logf("last progress lines:\n%s", lastLines(string(dt), 40))
		}
	}
	return rep, err
}

func copyExample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ktrdr")
	if out, err := exec.Command("cp", "-a", example, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the example: %v: %s", err, out)
	}
	return dir
}

func appendLine(t *testing.T, file, line string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
}

// TestFourImages is the milestone: all four images in one invocation,
// every probe passing, the shared layers one blob in the registry, and no
// layer content written twice.
func TestFourImages(t *testing.T) {
	w := world.ForTest(t)
	o := offline(w, "itest")
	rep, err := runBuild(t, w, buildArgs{dir: example, opts: o, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != 4 {
		t.Fatalf("%d images reported", len(rep.Images))
	}
	for _, img := range rep.Images {
		t.Logf("%-13s %s %s compressed %d uncompressed %d layers %d", img.Variant, img.Ref, img.Digest, img.CompressedBytes, img.UncompressedBytes, img.Layers)
		if img.Digest == "" || img.CompressedBytes == 0 || img.Layers == 0 {
			t.Errorf("%s: incomplete report %+v", img.Variant, img)
		}
		checkImageProbes(t, img)
		m := rep.Measures[img.Variant]
		if m == nil {
			t.Fatalf("%s: not measured", img.Variant)
		}
		ratio := float64(m.ContentBytes) / float64(m.UniqueBytes)
		t.Logf("  layer content %d bytes for %d bytes of final files: %.3fx", m.ContentBytes, m.UniqueBytes, ratio)
		if ratio > 1.05 {
			t.Errorf("%s: layers hold %.3fx the final files' bytes (> 1.05: something is written twice)", img.Variant, ratio)
		}
	}
	v := rep.Vertices
	t.Logf("vertices: %d over the solves, %d distinct, %d shared", v.Total, v.Distinct, v.Shared)
	if v.Shared == 0 || v.Distinct >= v.Total {
		t.Errorf("the concurrent solves share no vertex: %+v", v)
	}

	checkPackageBlobs(t, rep, map[string][]string{
		"numpy":  {"backend-prod", "worker-cpu", "backend-dev", "worker-gpu"},
		"pandas": {"backend-prod", "worker-cpu", "backend-dev", "worker-gpu"},
		"scipy":  {"worker-cpu", "backend-dev", "worker-gpu"},
		"sympy":  {"worker-cpu", "backend-dev", "worker-gpu"},
		"torch":  {"worker-cpu", "backend-dev", "worker-gpu"},
		"mypy":   {"backend-dev"},
		// A bucket: the same two small packages in three images.
		"fastapi mako": {"backend-prod", "worker-cpu", "backend-dev"},
	})
}

// layerDists maps each layer blob of an image that holds distributions to
// the space-joined names of what it holds ("numpy", "anyio idna ...").
func layerDists(m *inspect.Image) map[string]string {
	out := map[string]string{}
	for _, l := range m.Layers {
		var ds []string
		for _, d := range l.Distributions() {
			ds = append(ds, d.Name)
		}
		if len(ds) > 0 {
			out[strings.Join(ds, " ")] = l.Digest.String()
		}
	}
	return out
}

// checkPackageBlobs checks, in the registry, that each distribution is in
// exactly one layer of each image, that a layer with the same
// distributions is the same blob in every image that has it, and that
// each package set of want is a layer in the images named (torch's layer
// holding the CPU build in two images, the CUDA build in worker-gpu).
func checkPackageBlobs(t *testing.T, rep *build.Report, want map[string][]string) {
	t.Helper()
	byImage := map[string]map[string]string{}
	blobOf := map[string]map[string]string{} // dist set -> digest -> first image
	for _, img := range rep.Images {
		ls := layerDists(rep.Measures[img.Variant])
		byImage[img.Variant] = ls
		count := map[string]int{}
		for set, d := range ls {
			for _, n := range strings.Fields(set) {
				count[n]++
			}
			if strings.Contains(set, "ktrdr") {
				continue // the project's layer: each image copies other paths
			}
			if blobOf[set] == nil {
				blobOf[set] = map[string]string{}
			}
			if _, ok := blobOf[set][d]; !ok {
				blobOf[set][d] = img.Variant
			}
		}
		for n, c := range count {
			if c != 1 {
				t.Errorf("%s: %s is in %d layers", img.Variant, n, c)
			}
		}
		t.Logf("%s: %d layers hold distributions", img.Variant, len(ls))
	}
	for set, ds := range blobOf {
		if len(ds) > 1 && set != "torch" {
			t.Errorf("layer of %q: %d blobs across images (%v), want one", set, len(ds), ds)
		}
	}
	for pkg, images := range want {
		for _, v := range images {
			if _, ok := byImage[v][pkg]; !ok {
				t.Errorf("%s has no layer of exactly %s", v, pkg)
			}
		}
	}
	if len(blobOf["torch"]) != 2 {
		t.Errorf("torch: %d blobs, want two (the CPU build in worker-cpu and backend-dev, the CUDA build in worker-gpu)", len(blobOf["torch"]))
	}
}

// TestRebuilds: with no change every step comes from the cache; after a
// one-line change in the app's code only the project layers run again.
func TestRebuilds(t *testing.T) {
	w := world.ForTest(t)
	dir := copyExample(t)
	o := offline(w, "itest-rebuild")
	names := []string{"backend-prod", "worker-cpu"}
	if _, err := runBuild(t, w, buildArgs{dir: dir, variants: names, opts: o, push: true}); err != nil {
		t.Fatal(err)
	}
	rep, err := runBuild(t, w, buildArgs{dir: dir, variants: names, opts: o, push: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range rep.Vertices.Ran {
		if strings.HasPrefix(name, "[builder]") || strings.HasPrefix(name, "[runtime]") || strings.HasPrefix(name, "[layer]") {
			t.Errorf("no-change rebuild ran %q", name)
		}
	}
	// A line never written before: BuildKit caches copies by content, so a
	// change seen in an earlier run would be a cache hit.
	appendLine(t, filepath.Join(dir, "ktrdr", "api", "main.py"), fmt.Sprintf("# a one-line change %d", time.Now().UnixNano()))
	rep, err = runBuild(t, w, buildArgs{dir: dir, variants: names, opts: o, push: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after a code change, ran: %q", rep.Vertices.Ran)
	project := false
	for _, name := range rep.Vertices.Ran {
		switch {
		case strings.Contains(name, "install the project"):
			project = true
		case strings.Contains(name, "pip install"), strings.Contains(name, "apt-get"), strings.Contains(name, "create venv"),
			strings.HasPrefix(name, "[layer] ") && name != "[layer] project":
			t.Errorf("a code change rebuilt a dependency step: %q", name)
		}
	}
	if !project {
		t.Error("a code change did not reinstall the project")
	}
}

// TestDependencyChange: a new runtime dependency on a small package
// rebuilds exactly the one bucket layer that package joins, in the image
// that gains it, and nothing of the image whose pins did not change.
func TestDependencyChange(t *testing.T) {
	w := world.ForTest(t)
	dir := copyExample(t)
	o := offline(w, "itest-depchange")
	names := []string{"backend-prod", "worker-cpu"}
	before, err := runBuild(t, w, buildArgs{dir: dir, variants: names, opts: o, push: true})
	if err != nil {
		t.Fatal(err)
	}
	// threadpoolctl has no dependencies of its own, and worker-cpu has it
	// already (scikit-learn's): backend-prod gains one package.
	py := filepath.Join(dir, "pyproject.toml")
	dt, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(dt), `    "python-dotenv>=1.0.0",`+"\n", `    "python-dotenv>=1.0.0",`+"\n"+`    "threadpoolctl>=3.1.0",`+"\n", 1)
	if changed == string(dt) {
		t.Fatalf("%s: no python-dotenv line to add after", py)
	}
	if err := os.WriteFile(py, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log strings.Builder
	lock, err := w.Lock(ctx, dir, &log)
	if err != nil {
		t.Fatalf("uv lock: %v\n%s", err, lastLines(log.String(), 20))
	}
	if err := os.WriteFile(filepath.Join(dir, "uv.lock"), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := runBuild(t, w, buildArgs{dir: dir, variants: names, opts: o, push: true})
	if err != nil {
		t.Fatal(err)
	}
	// The graphs compare by vertex digest, not by what ran: BuildKit's
	// cache may hold the new install from an earlier run of this test.
	var installs []string
	for digest, name := range rep.Vertices.Names {
		if _, old := before.Vertices.Names[digest]; !old && strings.Contains(name, "pip install") {
			installs = append(installs, name)
		}
	}
	t.Logf("after the dependency change, ran: %q; new install steps: %q", rep.Vertices.Ran, installs)
	if len(installs) != 1 || !strings.Contains(installs[0], "small ") {
		t.Errorf("a new small dependency changed the install steps %q; want exactly one bucket layer (backend-prod's), none for worker-cpu", installs)
	}
}

// TestFaults: a probe that fails keeps the image out of the registry; a
// registry that refuses the push is an error naming it.
func TestFaults(t *testing.T) {
	w := world.ForTest(t)
	dir := copyExample(t)
	main := filepath.Join(dir, "ktrdr", "api", "main.py")
	dt, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(dt), `"ok"`, `"broken"`, 1)
	if broken == string(dt) {
		t.Fatalf("%s has no \"ok\" to break", main)
	}
	if err := os.WriteFile(main, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	o := offline(w, "itest-broken")
	_, err = runBuild(t, w, buildArgs{dir: dir, variants: []string{"backend-prod"}, opts: o, probe: true, push: true})
	var pe *build.ProbeError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "/api/v1/health") {
		t.Fatalf("a broken health endpoint gave %v, want a probe error", err)
	}
	name, _ := o.ImageName(mustVariant(t, "backend-prod"))
	if _, _, err := inspect.NewRegistry(name, nil).Manifest(context.Background(), ocispecs.Platform{OS: "linux", Architecture: "amd64"}); err == nil {
		t.Errorf("%s exists in the registry after its probe failed", name)
	}

	o = offline(w, "x")
	o.Registry = "127.0.0.1:5999/nowhere"
	_, err = runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o, push: true})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:5999") {
		t.Errorf("a push to a closed registry gave %v", err)
	}
}

// TestReproducible: with SOURCE_DATE_EPOCH, two builds that reuse no cached
// step (--no-cache: every vertex solved again, as from an empty cache, without
// pruning what other users of the daemon have) give the same manifest digest.
func TestReproducible(t *testing.T) {
	w := world.ForTest(t)
	var digests []string
	for i := range 2 {
		o := offline(w, fmt.Sprintf("itest-repro%d", i))
		if err := o.Set("source-date-epoch", "1700000000"); err != nil {
			t.Fatal(err)
		}
		rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o, push: true, noCache: true})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, rep.Images[0].Digest)
		for _, name := range []string{"uv pip install pandas", "uv pip install small ", "apt-get install tini curl", "add user"} {
			if !slices.ContainsFunc(rep.Vertices.Ran, func(s string) bool { return strings.Contains(s, name) }) {
				t.Errorf("build %d did not run %q again: %v", i+1, name, rep.Vertices.Ran)
			}
		}
	}
	t.Logf("backend-prod, twice with no cache: %s %s", digests[0], digests[1])
	if digests[0] != digests[1] {
		t.Errorf("backend-prod built twice with no cache: %s and %s", digests[0], digests[1])
	}
}

func mustVariant(t *testing.T, name string) variants.Variant {
	v, err := variants.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
