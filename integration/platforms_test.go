package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// indexOf reads what a tag points at in the world's registry: its digest
// and, for an index, each platform's manifest digest.
func indexOf(t *testing.T, ref string) (string, map[string]string) {
	t.Helper()
	host, rest, _ := strings.Cut(ref, "/")
	repo, tag, _ := strings.Cut(rest, ":")
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %v: %s", ref, resp.Status, err, body)
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	plats := map[string]string{}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS != "unknown" {
			plats[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest.String()
		}
	}
	return digest.FromBytes(body).String(), plats
}

// TestTwoPlatforms builds backend-prod and worker-cpu for linux/amd64 and
// linux/arm64 in one run: each image one OCI index of two manifests, every
// platform probed from the inside before the export (arm64 under QEMU:
// uname -m says aarch64, torch imports as the CPU build, the server
// answers its health check), its packages installed natively on amd64 for
// arm64. With SOURCE_DATE_EPOCH, backend-prod's index is the same from the
// CLI, from buildctl through the frontend image and from buildx bake. And
// worker-gpu for linux/arm64 is refused before anything is built.
//
// Long tier: it needs the world's linux/arm64 half and builds under QEMU.
// make test's checks of the same code are the cross builder's graphs and
// the platform refusals (variants/cross_test.go, internal/build).
func TestTwoPlatforms(t *testing.T) {
	world.RequireLong(t, "backend-prod and worker-cpu for linux/amd64 and linux/arm64, probed under QEMU")
	w := world.ForTest(t)
	w.RequireArm64(t)
	plats := []string{"linux/amd64", "linux/arm64"}

	o := offline(w, "itest-2p")
	if err := o.Set("source-date-epoch", epoch); err != nil {
		t.Fatal(err)
	}
	rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod", "worker-cpu"}, platforms: plats, opts: o, probe: true, push: true})
	if rep != nil {
		var table strings.Builder
		build.WriteTable(&table, rep)
		t.Logf("report:\n%s", table.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != 4 {
		t.Fatalf("%d report rows, expected 4 (2 images x 2 platforms)", len(rep.Images))
	}
	indexes := map[string]string{}
	for _, img := range rep.Images {
		checkImageProbes(t, img)
		machine := map[string]string{"linux/amd64": "x86_64", "linux/arm64": "aarch64"}[img.Platform]
		probed := map[string]string{}
		for _, p := range img.Probes {
			// "serve GET :8000/api/v1/health" is keyed "serve".
			name, _, _ := strings.Cut(p.Name, " ")
			probed[name] = p.Detail
		}
		if d := probed["platform"]; !strings.Contains(d, "uname -m: "+machine) {
			t.Errorf("%s %s: platform probe %q, expected uname -m: %s", img.Variant, img.Platform, d, machine)
		}
		if img.Variant == "worker-cpu" && !strings.Contains(probed["torch"], "torch.version.cuda = None") {
			t.Errorf("worker-cpu %s: torch probe %q", img.Platform, probed["torch"])
		}
		if img.Variant == "backend-prod" && !strings.HasPrefix(probed["serve"], "200 ") {
			t.Errorf("backend-prod %s: the health probe did not answer 200: %q", img.Platform, probed["serve"])
		}
		if img.Index == "" || img.Digest == "" || img.CompressedBytes == 0 {
			t.Errorf("%s %s: index %q, digest %q, compressed %d", img.Variant, img.Platform, img.Index, img.Digest, img.CompressedBytes)
		}
		if prev, ok := indexes[img.Variant]; ok && prev != img.Index {
			t.Errorf("%s: rows name two indexes, %s and %s", img.Variant, prev, img.Index)
		}
		indexes[img.Variant] = img.Index
		// The registry has one index under the name, whose manifest for
		// this platform is the row's.
		idx, manifests := indexOf(t, img.Ref)
		if idx != img.Index || manifests[img.Platform] != img.Digest || len(manifests) != 2 {
			t.Errorf("%s in the registry: index %s with %v; the report says index %s, %s %s", img.Ref, idx, manifests, img.Index, img.Platform, img.Digest)
		}
	}

	// The same index through the frontend image, from buildctl and bake.
	fe := frontendImage(t, w)
	bctlRef := w.Registry + "/itest-2p-buildctl/ktrdr-backend:prod"
	if out, err := buildctlFrontend(t, w, fe, "backend-prod", "type=image,name="+bctlRef+",push=true,rewrite-timestamp=true",
		"--opt", "platform="+strings.Join(plats, ",")); err != nil {
		t.Fatalf("buildctl: %v\n%s", err, lastLines(out, 30))
	}
	bin, env := buildxEnv(t, w)
	env = append(env, "FRONTEND="+fe, "REGISTRY="+w.Registry+"/itest-2p-bake", "PLATFORMS="+strings.Join(plats, ","))
	ba := buildArgsFor(w)
	for _, k := range sortedKeys(ba) {
		env = append(env, k+"="+ba[k])
	}
	if out, err := runCmd(t, env, "..", bin, "bake", "backend-prod", "--progress", "plain", "--provenance=false",
		"--set", "*.output=type=image,push=true,rewrite-timestamp=true"); err != nil {
		t.Fatalf("bake: %v\n%s", err, lastLines(out, 30))
	}
	cli := indexes["backend-prod"]
	for _, r := range [][2]string{{"buildctl", bctlRef}, {"bake", w.Registry + "/itest-2p-bake/ktrdr-backend:prod"}} {
		idx, manifests := indexOf(t, r[1])
		t.Logf("backend-prod index from %-8s %s %v", r[0], idx, manifests)
		if idx != cli {
			t.Errorf("backend-prod's index from %s is %s, from the CLI %s", r[0], idx, cli)
		}
	}
	t.Logf("backend-prod index from the CLI      %s", cli)

	// worker-gpu has no CUDA build locked for arm64: refused up front.
	_, err = runBuild(t, w, buildArgs{dir: example, variants: []string{"worker-gpu"}, platforms: plats, opts: offline(w, "itest-2p-gpu"), probe: true, push: true})
	if err == nil || !strings.Contains(err.Error(), "worker-gpu") || !strings.Contains(err.Error(), "linux/arm64") || !strings.Contains(err.Error(), "CUDA") {
		t.Errorf("worker-gpu for linux/arm64: %v", err)
	}
}
