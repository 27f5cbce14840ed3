package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/moby/buildkit/client"
)

// TestBuildxTwoNodes is the way past one machine: BuildKit's own
// scale-out, a buildx builder of two nodes (remote driver), one declared
// for linux/amd64 and one for linux/arm64, builds backend-prod for both
// platforms through the frontend image in one buildx build, each platform
// on its own node, with a registry cache. Two fresh nodes then build it
// again from that cache: no package is installed twice.
//
// Both nodes are buildkitd on this machine (the arm64 one runs arm64 steps
// under QEMU, its packages installed natively for arm64 by the frontend);
// on real runners the second would be a native arm64 machine or pod.
//
// It starts two daemons with empty caches and builds twice, so it is a
// documented long run, not part of make test:
//
//	KTRDR_SCALE_TEST=1 go test -count=1 -v -run TestBuildxTwoNodes -timeout 60m ./integration
func TestBuildxTwoNodes(t *testing.T) {
	if os.Getenv("KTRDR_SCALE_TEST") == "" {
		t.Skip("a long run (two fresh buildkitd, two builds of backend-prod for two platforms): KTRDR_SCALE_TEST=1 go test -run TestBuildxTwoNodes ./integration")
	}
	w := world.ForTest(t)
	w.RequireArm64(t)
	fe := frontendImage(t, w)
	bin, env := buildxEnv(t, w)
	syntax := filepath.Join(t.TempDir(), "ktrdr.images")
	if err := os.WriteFile(syntax, []byte("# syntax="+fe+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cacheRef := w.Registry + "/itest-nodes/cache:backend-prod"
	imageRef := w.Registry + "/itest-nodes/ktrdr-backend:prod"

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
		args := []string{"build", "--builder", builder, "--platform", "linux/amd64,linux/arm64", "-f", syntax, "--target", "backend-prod",
			"--provenance=false", "--progress", "rawjson",
			"--output", "type=image,name=" + imageRef + ",push=true,rewrite-timestamp=true",
			"--cache-to", "type=registry,ref=" + cacheRef + ",mode=max"}
		if cacheFrom {
			args = append(args, "--cache-from", "type=registry,ref="+cacheRef)
		}
		ba := buildArgsFor(w)
		for _, k := range sortedKeys(ba) {
			args = append(args, "--build-arg", k+"="+ba[k])
		}
		out, err := runCmd(t, env, "", bin, append(args, example)...)
		if werr := os.WriteFile(progress, []byte(out), 0o644); werr != nil {
			t.Fatal(werr)
		}
		if err != nil {
			t.Fatalf("buildx build on two nodes (%s): %v\n%s", name, err, lastLines(out, 30))
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
	idx2, _ := indexOf(t, imageRef)
	if idx2 != idx {
		t.Errorf("fresh nodes from the cache made index %s, the first round %s", idx2, idx)
	}
	t.Logf("fresh nodes: %d install steps from the registry cache, %d ran; index %s", cached, ran, idx2)
}
