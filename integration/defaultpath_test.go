package integration

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
)

// The tests of this file cover the paths beside the default one (uv, CUDA
// from the nvidia-* wheels, which TestFourImages builds) and what the
// default path must refuse: the pip installer, worker-gpu on a CUDA base,
// a wheel whose bytes are not the lock's, packages from a mirror, and a
// uv image that is missing or of another release.

// TestPipInstaller: the pip installer, the same pins with --require-hashes,
// builds backend-prod and worker-cpu and every probe passes.
func TestPipInstaller(t *testing.T) {
	w := world.ForTest(t)
	o := offline(w, "itest-pip")
	o.Installer = "pip"
	rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod", "worker-cpu"}, opts: o, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	checkProbes(t, rep.Images)
}

// TestCUDABaseMode: worker-gpu on the CUDA base image, the nvidia-* wheels
// left out (the base's /usr/lib has CUDA), probed: one CUDA stack.
func TestCUDABaseMode(t *testing.T) {
	w := world.ForTest(t)
	o := offline(w, "itest-cudabase")
	o.CUDABase = w.CUDABase
	rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"worker-gpu"}, opts: o, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	checkProbes(t, rep.Images)
}

func checkProbes(t *testing.T, images []build.ImageReport) {
	t.Helper()
	for _, img := range images {
		t.Logf("%-13s %s compressed %d uncompressed %d layers %d", img.Variant, img.Ref, img.CompressedBytes, img.UncompressedBytes, img.Layers)
		checkImageProbes(t, img)
	}
}

// requiredProbes are the probes every image gets (internal/probe.Check):
// a missing one is a failure, not fewer lines in a log.
var requiredProbes = []string{"config", "platform", "user", "ownership", "clean", "installed distributions = the lock's pins; requirements met", "torch"}

// checkImageProbes: every required probe ran in the image (and, for a
// KTRDR variant with a health path, the server's GET), and all passed.
func checkImageProbes(t *testing.T, img build.ImageReport) {
	t.Helper()
	ran := map[string]bool{}
	health := false
	for _, p := range img.Probes {
		ran[p.Name] = true
		health = health || strings.HasPrefix(p.Name, "serve GET ")
	}
	for _, name := range requiredProbes {
		if !ran[name] {
			t.Errorf("%s: probe %q did not run (ran: %v)", img.Variant, name, slices.Sorted(maps.Keys(ran)))
		}
	}
	// The second app's images (TestSecondApp) are checked by that test.
	ktrdr := !strings.Contains(img.Ref, "/"+signalsNamespace+"/")
	if v, err := variants.Lookup(img.Variant); ktrdr && err == nil && v.HealthPath != "" && !health {
		t.Errorf("%s: no serve GET %s probe ran", img.Variant, v.HealthPath)
	}
	for _, p := range img.Probes {
		t.Logf("  %-5v %s: %s", p.OK, p.Name, p.Detail)
		if !p.OK {
			t.Errorf("%s: probe %s failed: %s", img.Variant, p.Name, p.Detail)
		}
	}
}

// lockFor copies the example with its uv.lock pointing at the mirror: the
// lock a project would have made against that mirror.
func lockFor(t *testing.T, m *world.Mirror) string {
	t.Helper()
	dir := copyExample(t)
	file := filepath.Join(dir, "uv.lock")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(m.URL, "/simple")
	out := strings.ReplaceAll(string(b), "http://"+world.IndexAddr, host)
	if out == string(b) {
		t.Fatalf("%s names no %s", file, world.IndexAddr)
	}
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTamperedWheel: the index serves other bytes under fastapi's wheel
// name; with either installer the build fails naming fastapi and the hash
// mismatch, and nothing is pushed.
func TestTamperedWheel(t *testing.T) {
	w := world.ForTest(t)
	m, err := w.StartMirror("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := lockFor(t, m)
	_, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	fastapi := lock.PackagesNamed("fastapi")[0]
	if err := m.Tamper(path.Base(fastapi.Wheels[0].URL)); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"uv", "pip"} {
		t.Run(inst, func(t *testing.T) {
			// A namespace of its own: no earlier run's image may answer for
			// this one's push.
			o := offline(w, fmt.Sprintf("itest-tamper-%s-%d", inst, time.Now().UnixNano()))
			o.Installer = inst
			// The lock's own index (the mirror it now names), not the
			// world's: that one serves the real bytes.
			o.IndexURL = ""
			// A cache of its own: a wheel cached from the real index must
			// not hide the tampered one.
			o.CacheNS = fmt.Sprintf("tamper-%s-%d", inst, time.Now().UnixNano())
			_, err := runBuild(t, w, buildArgs{dir: dir, variants: []string{"backend-prod"}, opts: o, push: true})
			if err == nil {
				t.Fatal("the build with a tampered fastapi wheel succeeded")
			}
			msg := err.Error()
			t.Logf("error:\n%s", msg)
			// The installer's own verdict, not words the error always
			// holds because it quotes the command (--require-hashes,
			// --hash=sha256:): uv's "Hash mismatch for `fastapi==V`",
			// pip's "DO NOT MATCH THE HASHES" with fastapi's line, and the
			// hash the lock expects in both.
			pin := "fastapi==" + fastapi.Version
			want := []string{"Hash mismatch for `" + pin + "`", strings.TrimPrefix(fastapi.Wheels[0].Hash, "sha256:")}
			if inst == "pip" {
				want = []string{"DO NOT MATCH THE HASHES", pin + " from ", "Expected sha256 " + strings.TrimPrefix(fastapi.Wheels[0].Hash, "sha256:")}
			}
			for _, s := range want {
				if !strings.Contains(msg, s) {
					t.Errorf("the error lacks %s's hash mismatch line %q:\n%s", inst, s, msg)
				}
			}
			name, _ := o.ImageName(mustVariant(t, "backend-prod"))
			if exists(t, name) {
				t.Errorf("%s was pushed", name)
			}
		})
	}
}

// TestIndexMirror: with index-url (and cpu-index-url) naming a mirror of
// the index the lock was made against, every package comes from the
// mirror, with either installer (both install the lock's pins by version
// and hash from the index the options name; uv sync --frozen would take
// the lock's URLs whatever --index-url or UV_INDEX_URL say).
func TestIndexMirror(t *testing.T) {
	w := world.ForTest(t)
	m, err := w.StartMirror("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	proj, lock, err := uvlock.LoadProject(example)
	if err != nil {
		t.Fatal(err)
	}
	v := mustVariant(t, "worker-cpu")
	res, err := v.Pins(proj, lock, variants.Target{CPUIndex: m.CPUIndexURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"uv", "pip"} {
		t.Run(inst, func(t *testing.T) {
			m.Reset()
			o := offline(w, "itest-mirror-"+inst)
			o.Installer = inst
			o.IndexURL, o.CPUIndexURL = m.URL, m.CPUIndexURL
			o.CacheNS = fmt.Sprintf("mirror-%s-%d", inst, time.Now().UnixNano())
			rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"worker-cpu"}, opts: o, probe: true, push: true})
			if err != nil {
				t.Fatal(err)
			}
			checkProbes(t, rep.Images)
			got := m.Wheels()
			t.Logf("the mirror served %d wheels to this build", len(got))
			for _, p := range res.Pins {
				prefix := strings.ReplaceAll(p.Name, "-", "_") + "-" + p.Version + "-"
				if !slices.ContainsFunc(got, func(f string) bool { return strings.HasPrefix(strings.ToLower(f), prefix) }) {
					t.Errorf("%s %s did not come from the mirror (served: %v)", p.Name, p.Version, got)
				}
			}
			if !slices.ContainsFunc(got, func(f string) bool { return strings.HasPrefix(f, "hatchling-") }) {
				t.Errorf("the project's build backend did not come from the mirror")
			}
		})
	}
}

// TestUVImageChecked: a uv image that does not exist, and one that holds
// another release than uv-version asks for, both fail naming the image and
// the version, before any install step ran.
func TestUVImageChecked(t *testing.T) {
	w := world.ForTest(t)
	// The world's uv 0.9.17 under the tag 0.9.99, as a mistagged image.
	if err := retag(w.UVImage, w.UVVersion, "0.9.99"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ version, want string }{
		{"0.9.98", "the uv image " + w.UVImage + ":0.9.98 (uv 0.9.98) cannot be resolved"},
		{"0.9.99", "holds uv " + w.UVVersion},
	} {
		t.Run(c.version, func(t *testing.T) {
			o := offline(w, "itest-uvimage")
			o.UVVersion = c.version
			rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o})
			if err == nil {
				t.Fatal("the build succeeded")
			}
			t.Logf("error:\n%s", err)
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.version) {
				t.Errorf("the error does not say %q and %s", c.want, c.version)
			}
			if rep != nil {
				for _, name := range rep.Vertices.Ran {
					if strings.Contains(name, "pip install") || strings.Contains(name, "install the project") {
						t.Errorf("an install step ran: %s", name)
					}
				}
			}
		})
	}
}

// retag copies repo:from to repo:to in the world's registry.
func retag(repo, from, to string) error {
	host, name, _ := strings.Cut(repo, "/")
	const accept = "application/vnd.oci.image.manifest.v1+json"
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+name+"/manifests/"+from, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s:%s: %s", repo, from, resp.Status)
	}
	put, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+name+"/manifests/"+to, resp.Body)
	put.Header.Set("Content-Type", resp.Header.Get("Content-Type"))
	presp, err := http.DefaultClient.Do(put)
	if err != nil {
		return err
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s:%s: %s", repo, to, presp.Status)
	}
	return nil
}

func exists(t *testing.T, ref string) bool {
	t.Helper()
	host, rest, _ := strings.Cut(ref, "/")
	name, tag, _ := strings.Cut(rest, ":")
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodHead, "http://"+host+"/v2/"+name+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
