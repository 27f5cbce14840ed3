package integration

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/variants"
)

// TestOnlineUV is the suite for what the offline world cannot stand in for:
// the uv installer (uv pip install of the lock's pins, with the binary from ghcr.io/astral-sh/uv),
// the real python:3.13-slim and PyPI. It builds the four images of a real
// uv project with the default options (uv, PyPI, the PyTorch CPU index) and
// probes them. It runs only when KTRDR_IMAGES_ONLINE_CONTEXT names a uv
// project whose uv.lock has PyPI artifacts (a KTRDR checkout) and the
// registries and indexes answer; elsewhere it says why it skipped.
func TestOnlineUV(t *testing.T) {
	w := world.ForTest(t)
	dir := os.Getenv("KTRDR_IMAGES_ONLINE_CONTEXT")
	if dir == "" {
		t.Skip("online suite: set KTRDR_IMAGES_ONLINE_CONTEXT to a uv project (a KTRDR checkout) to build with uv, Docker Hub and PyPI")
	}
	for _, u := range []string{"https://registry-1.docker.io/v2/", "https://ghcr.io/v2/", "https://pypi.org/simple/", "https://download.pytorch.org/whl/cpu/"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			t.Skipf("online suite: %s is not reachable from here (%v)", u, err)
		}
		resp.Body.Close()
	}
	o := variants.DefaultOptions()
	o.Registry = w.Registry + "/itest-online"
	rep, err := runBuild(t, w, buildArgs{dir: dir, opts: o, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range rep.Images {
		for _, p := range img.Probes {
			if !p.OK {
				t.Errorf("%s: probe %s failed: %s", img.Variant, p.Name, p.Detail)
			}
		}
		t.Logf("%s %s %d bytes compressed", img.Variant, img.Ref, img.CompressedBytes)
	}
}
