package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
)

// attachEnv set to 1 makes the tests use the world that is already up
// (world.Attach) instead of bringing it up (world.Main), for a checkout
// that must not rebuild the shared world's harness.
const attachEnv = "KTRDR_IMAGES_ATTACH"

var attached struct {
	w   *world.World
	err error
}

func TestMain(m *testing.M) {
	if os.Getenv(attachEnv) != "1" {
		os.Exit(world.Main(m))
	}
	attached.w, attached.err = world.Attach(context.Background(), world.Options{Log: os.Stderr})
	code := m.Run()
	attached.w.Close()
	os.Exit(code)
}

func testWorld(t *testing.T) *world.World {
	t.Helper()
	if os.Getenv(attachEnv) != "1" {
		return world.ForTest(t)
	}
	if testing.Short() {
		t.Skip(world.SkipMessage)
	}
	if attached.err != nil {
		t.Fatal(attached.err)
	}
	return attached.w
}

// TestVerify runs make verify's checks on this machine's engine: every
// check passes or differs for its stated reason, and the facts, the images
// and the docker sizes are what the seed's commands showed.
func TestVerify(t *testing.T) {
	if testing.Short() {
		t.Skip(world.SkipMessage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := (Docker{}).NotAvailable(ctx); err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	w := testWorld(t)
	d, err := InstallBuildx(ctx, w.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	module, _ := filepath.Abs(filepath.Join("..", ".."))
	var out bytes.Buffer
	logf, err := os.Create(filepath.Join(t.TempDir(), "build.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	res, err := Verify(ctx, Config{
		World: w, Docker: d, ModuleDir: module, ContextDir: filepath.Join(module, "examples", "ktrdr"),
		WorkDir: t.TempDir(), Out: &out, BuildLog: logf,
	})
	t.Logf("make verify's output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Failed() {
		t.Errorf("FAIL [%s] %s: %s", c.Section, c.Command, c.Detail)
	}
	if res.Facts.Buildx == "" || !strings.Contains(res.Facts.Buildx, BuildxVersion) {
		t.Errorf("buildx plugin %q, want %s", res.Facts.Buildx, BuildxVersion)
	}
	for _, n := range []string{"backend-dev", "backend-prod", "worker-cpu", "worker-gpu"} {
		if res.DockerSizes[n] == 0 {
			t.Errorf("no docker size for %s", n)
		}
	}
	// The checks that may differ here, and only for their reasons.
	for _, c := range res.Checks {
		if c.Verdict != Differs {
			continue
		}
		switch {
		case strings.Contains(c.Detail, "lacks the LLB capability"),
			strings.Contains(c.Detail, "cuDNN"),
			strings.Contains(c.Detail, `without the word "healthy"`),
			strings.Contains(c.Detail, "the seed's target"):
		default:
			t.Errorf("unexpected DIFFERS [%s] %s: %s", c.Section, c.Command, c.Detail)
		}
	}
}
