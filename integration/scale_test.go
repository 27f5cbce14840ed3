package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestBuildxTwoNodes is the way past one machine: BuildKit's own
// scale-out, a buildx builder of two nodes (remote driver), one declared
// for linux/amd64 and one for linux/arm64, builds backend-prod for both
// platforms through the frontend image in one buildx bake, each platform
// on its own node with its own registry cache, the two manifests merged
// into one index by buildx imagetools create. Two fresh nodes then build it
// again from those caches: no package is installed twice, and every layer
// is the same (the configs' history is not: see the end).
//
// Both nodes are buildkitd on this machine (the arm64 one runs arm64 steps
// under QEMU, its packages installed natively for arm64 by the frontend);
// on real runners the second would be a native arm64 machine or pod.
//
// It starts two daemons with empty caches and builds twice, so it is in
// the long tier (make test-all), not make test:
//
//	KTRDR_TEST_LONG=1 go test -count=1 -v -run TestBuildxTwoNodes -timeout 60m ./integration
func TestBuildxTwoNodes(t *testing.T) {
	world.RequireLong(t, "two fresh buildkitd, two builds of backend-prod for two platforms")
	w := world.ForTest(t)
	w.RequireArm64(t)
	fe := frontendImage(t, w)
	bin, env := buildxEnv(t, w)
	syntax := filepath.Join(t.TempDir(), "ktrdr.images")
	if err := os.WriteFile(syntax, []byte("# syntax="+fe+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// One cache ref per platform: buildx sends one --cache-to to every node
	// of a multi-node build, and each node's export replaces the other's
	// (measured here: the second round found one platform's steps and ran
	// the other's again; docker/buildx#1044). So each platform is its own
	// bake target with its own cache, pushed by digest, and the two are
	// merged into one index by `buildx imagetools create`, as Docker's
	// documentation distributes a multi-platform build over runners.
	cacheRef := w.Registry + "/itest-nodes/cache"
	imageRef := w.Registry + "/itest-nodes/ktrdr-backend:prod"
	imageRepo, _, _ := strings.Cut(imageRef, ":prod")
	ba := buildArgsFor(w)
	ctxDir, err := filepath.Abs(example)
	if err != nil {
		t.Fatal(err)
	}
	bakeFile := func(dir string, cacheFrom bool) string {
		targets := map[string]any{}
		for _, arch := range []string{"amd64", "arm64"} {
			tg := map[string]any{
				"context":    ctxDir,
				"dockerfile": syntax,
				"target":     "backend-prod",
				"platforms":  []string{"linux/" + arch},
				"args":       ba,
				"cache-to":   []string{"type=registry,ref=" + cacheRef + ":" + arch + ",mode=max"},
				"output":     []string{"type=image,name=" + imageRepo + ",push-by-digest=true,name-canonical=true,push=true,rewrite-timestamp=true"},
			}
			if cacheFrom {
				tg["cache-from"] = []string{"type=registry,ref=" + cacheRef + ":" + arch}
			}
			targets["prod-"+arch] = tg
		}
		b, err := json.MarshalIndent(map[string]any{
			"group":  map[string]any{"default": map[string]any{"targets": []string{"prod-amd64", "prod-arm64"}}},
			"target": targets,
		}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "docker-bake.json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}

	round := func(name string, cacheFrom bool) (amd, arm *world.ScratchBuildkitd, progress string) {
		t.Helper()
		dir := t.TempDir()
		var nodes []*world.ScratchBuildkitd
		for _, n := range []string{"amd64", "arm64"} {
			root := filepath.Join(dir, n, "root")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := w.StartScratchBuildkitd(t.Context(), root)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Stop)
			nodes = append(nodes, b)
		}
		builder := "ktrdr-nodes-" + name
		if out, err := runCmd(t, env, "", bin, "create", "--name", builder, "--driver", "remote", "--platform", "linux/amd64", nodes[0].Addr); err != nil {
			t.Fatalf("buildx create: %v\n%s", err, out)
		}
		if out, err := runCmd(t, env, "", bin, "create", "--append", "--name", builder, "--driver", "remote", "--platform", "linux/arm64", nodes[1].Addr); err != nil {
			t.Fatalf("buildx create --append: %v\n%s", err, out)
		}
		progress = filepath.Join(dir, "progress.json")
		meta := filepath.Join(dir, "metadata.json")
		out, err := runCmd(t, env, "", bin, "bake", "--builder", builder, "-f", bakeFile(dir, cacheFrom),
			"--allow", "fs.read="+ctxDir, "--allow", "fs.read="+filepath.Dir(syntax),
			"--provenance=false", "--progress", "rawjson", "--metadata-file", meta)
		if werr := os.WriteFile(progress, []byte(out), 0o644); werr != nil {
			t.Fatal(werr)
		}
		if err != nil {
			t.Fatalf("buildx bake on two nodes (%s): %v\n%s", name, err, lastLines(out, 30))
		}
		mb, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]map[string]any
		if err := json.Unmarshal(mb, &md); err != nil {
			t.Fatalf("%s: %v", meta, err)
		}
		refs := []string{}
		for _, tg := range []string{"prod-amd64", "prod-arm64"} {
			d, _ := md[tg]["containerimage.digest"].(string)
			if d == "" {
				t.Fatalf("bake metadata names no digest for %s: %s", tg, mb)
			}
			refs = append(refs, imageRepo+"@"+d)
		}
		if out, err := runCmd(t, env, "", bin, append([]string{"imagetools", "create", "-t", imageRef}, refs...)...); err != nil {
			t.Fatalf("buildx imagetools create: %v\n%s", err, lastLines(out, 20))
		}
		return nodes[0], nodes[1], progress
	}

	// Round one: each platform's install steps ran on its own node.
	amd, arm, _ := round("first", false)
	steps := func(b *world.ScratchBuildkitd) string {
		c, err := client.New(t.Context(), b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		du, err := c.DiskUsage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, r := range du {
			all = append(all, r.Description)
		}
		return strings.Join(all, "\n")
	}
	amdSteps, armSteps := steps(amd), steps(arm)
	if !strings.Contains(armSteps, "--python-platform aarch64") {
		t.Errorf("the arm64 node has no install step for aarch64 in its cache")
	}
	if strings.Contains(amdSteps, "--python-platform aarch64") {
		t.Errorf("the amd64 node ran an install step for aarch64: the platforms were not split between the nodes")
	}
	if !strings.Contains(amdSteps, "uv pip install") {
		t.Errorf("the amd64 node ran no install step")
	}
	idx, manifests := indexOf(t, imageRef)
	t.Logf("two nodes: %s %v", idx, manifests)
	if len(manifests) != 2 {
		t.Errorf("%s: %v, expected linux/amd64 and linux/arm64", imageRef, manifests)
	}

	// Round two, on fresh nodes with the registry cache: no package
	// installed again, the same index.
	_, _, progress := round("second", true)
	ran, cached := 0, 0
	f, err := os.Open(progress)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var st client.SolveStatus
		if json.Unmarshal(sc.Bytes(), &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			if !strings.Contains(v.Name, "uv pip install") || v.Completed == nil {
				continue
			}
			if v.Cached {
				cached++
			} else {
				ran++
				t.Errorf("fresh nodes with the registry cache installed again: %s", v.Name)
			}
		}
	}
	if cached == 0 {
		t.Errorf("fresh nodes: no install step came from the registry cache (%d ran)", ran)
	}
	// The same layers, platform by platform. The index is not the same:
	// BuildKit fills each layer's config history from its cache record's
	// description, which for a layer imported from a registry cache reads
	// "imported sha256:..." instead of the step that made it (measured:
	// only those created_by strings differ), so the configs, manifests and
	// index differ while every layer is the first round's.
	idx2, manifests2 := indexOf(t, imageRef)
	for plat, d := range manifests {
		l1, l2 := layersOf(t, imageRepo, d), layersOf(t, imageRepo, manifests2[plat])
		if strings.Join(l1, " ") != strings.Join(l2, " ") {
			t.Errorf("%s: fresh nodes from the cache made layers %v, the first round %v", plat, l2, l1)
		}
	}
	t.Logf("fresh nodes: %d install steps from the registry cache, %d ran; index %s (first round %s), the same layers for %d platforms",
		cached, ran, idx2, idx, len(manifests))
}

// layersOf lists the layer digests of the manifest dgst in repo (HOST/NAME).
func layersOf(t *testing.T, repo, dgst string) []string {
	t.Helper()
	host, name, _ := strings.Cut(repo, "/")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, name, dgst), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", ocispecs.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m ocispecs.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s@%s: %d %v", repo, dgst, resp.StatusCode, err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	if len(out) == 0 {
		t.Fatalf("%s@%s has no layers", repo, dgst)
	}
	return out
}
