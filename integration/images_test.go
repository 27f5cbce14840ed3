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
	opts     variants.Options
	probe    bool
	push     bool
	noCache  bool
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
		ContextDir: a.dir, Variants: a.variants, Options: a.opts,
		Probe: a.probe, Push: a.push, Inspect: a.push, NoCache: a.noCache,
		Progress: "plain", ProgressOut: logf,
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

	// The layers of backend-prod's environment are the same blobs in the
	// three CPU-side images, and the ml-cpu layer in worker-cpu and
	// backend-dev. Each diff may export as several layers (one per step),
	// so the check is on sets: the biggest layer backend-prod adds to its
	// base (the deps) is in all three; the biggest layer worker-cpu adds to
	// backend-prod's (torch and the ml extra) is in backend-dev too.
	base, err := inspect.New().Inspect(context.Background(), inspect.NewRegistry(w.PythonBase, nil), ocispecs.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	set := func(ls []inspect.Layer) map[string]int64 {
		m := map[string]int64{}
		for _, l := range ls {
			m[l.Digest.String()] = l.Uncompressed
		}
		return m
	}
	baseSet := set(base.Layers)
	prod, cpu, dev := set(rep.Measures["backend-prod"].Layers), set(rep.Measures["worker-cpu"].Layers), set(rep.Measures["backend-dev"].Layers)
	biggest := func(m map[string]int64, not ...map[string]int64) (string, int64) {
		var best string
		var size int64 = -1
	next:
		for d, s := range m {
			for _, n := range not {
				if _, ok := n[d]; ok {
					continue next
				}
			}
			if s > size {
				best, size = d, s
			}
		}
		return best, size
	}
	deps, depsSize := biggest(prod, baseSet)
	t.Logf("deps layer %s: %d bytes", deps, depsSize)
	if _, ok := cpu[deps]; !ok {
		t.Errorf("worker-cpu lacks backend-prod's deps layer %s", deps)
	}
	if _, ok := dev[deps]; !ok {
		t.Errorf("backend-dev lacks backend-prod's deps layer %s", deps)
	}
	ml, mlSize := biggest(cpu, prod)
	t.Logf("ml-cpu layer %s: %d bytes", ml, mlSize)
	if _, ok := dev[ml]; !ok || mlSize < 50e6 {
		t.Errorf("backend-dev lacks worker-cpu's ml layer %s (%d bytes)", ml, mlSize)
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
		// The requirements files are tiny file ops on scratch that BuildKit
		// writes again rather than reporting cached; no install step may run.
		if strings.HasPrefix(name, "[builder] requirements-") {
			continue
		}
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
		case strings.Contains(name, "install layer"), strings.Contains(name, "sync layer"), strings.Contains(name, "apt-get"), strings.Contains(name, "create venv"), strings.HasPrefix(name, "[layer] env"):
			t.Errorf("a code change rebuilt a dependency step: %q", name)
		case strings.Contains(name, "install the project"):
			project = true
		}
	}
	if !project {
		t.Error("a code change did not reinstall the project")
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
		for _, name := range []string{"uv sync layer deps", "apt-get install tini curl", "add user"} {
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
