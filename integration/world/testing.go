package world

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// shared is the world TestMain brought up for the tests of one package.
var shared struct {
	w    *World
	err  error
	took time.Duration
	main bool
}

// SkipMessage is what tests needing the world say when they skip.
const SkipMessage = "needs the offline world (buildkitd, registry, Debian-made base images, local package index); skipped under -short"

// Main brings the world up once for a test binary and runs its tests; use
// it as
//
//	func TestMain(m *testing.M) { os.Exit(world.Main(m)) }
//
// Under -short it brings nothing up. If Up fails, the tests that call
// ForTest fail with its error (the failing step and its log), the others
// run. The services this process started are stopped at the end, unless
// another test binary still uses them.
func Main(m *testing.M) int {
	flag.Parse()
	shared.main = true
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	start := time.Now()
	shared.w, shared.err = Up(ctx, Options{Log: os.Stderr})
	shared.took = time.Since(start)
	cancel()
	if shared.err != nil {
		fmt.Fprintf(os.Stderr, "world: Up failed: %v\n", shared.err)
	}
	code := m.Run()
	if err := shared.w.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "world: Close: %v\n", err)
	}
	return code
}

// ForTest returns the world Main brought up. It skips the test under
// -short and fails it when the world could not be brought up.
func ForTest(t testing.TB) *World {
	t.Helper()
	if testing.Short() {
		t.Skip(SkipMessage)
	}
	if !shared.main {
		t.Fatal("world.ForTest: the package's TestMain must call world.Main")
	}
	if shared.err != nil {
		t.Fatalf("the offline world is not up: %v", shared.err)
	}
	// Each test starts within the disk budget (see Trim).
	trimForTest(shared.w, t.Logf)
	return shared.w
}

// UpTime is how long Main's Up took in this test binary.
func UpTime() time.Duration { return shared.took }

// RequireArmEnv makes RequireArm64 fail a test instead of skipping it
// when linux/arm64 cannot be had here: make test sets it, so that a
// machine without emulation does not pass the platform tests silently.
const RequireArmEnv = "KTRDR_TEST_REQUIRE_ARM64"

// RequireArm64 brings up the world's linux/arm64 half if it is not up yet
// (World.EnsureArm64: emulation, the arm64 python base, the aarch64 wheels;
// cached like the rest), and skips the test, with the reason, when this
// machine cannot emulate linux/arm64; with $KTRDR_TEST_REQUIRE_ARM64=1 it
// fails the test instead.
func (w *World) RequireArm64(t testing.TB) {
	t.Helper()
	if !w.Emulation.Arm64 {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
		err := w.EnsureArm64(ctx)
		cancel()
		if err != nil {
			t.Fatalf("bringing up the world's linux/arm64 half: %v", err)
		}
	}
	if !w.Emulation.Arm64 {
		if os.Getenv(RequireArmEnv) == "1" {
			t.Fatalf("linux/arm64 cannot be built or run here, and $%s=1: %s", RequireArmEnv, w.Emulation.Why)
		}
		t.Skipf("linux/arm64 cannot be built or run here: %s", w.Emulation.Why)
	}
}
