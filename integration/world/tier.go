package world

import (
	"os"
	"testing"
)

// The suite has two tiers. make test (what .ci/run runs) proves every
// capability at least once, on linux/amd64; make test-all sets LongEnv and
// adds the long forms: both platforms, the scale-out builder, the long
// drills, the 100,000-package lock.

// LongEnv selects the long tier when it is "1" (make test-all sets it).
const LongEnv = "KTRDR_TEST_LONG"

// Long reports whether the long tier runs.
func Long() bool { return os.Getenv(LongEnv) == "1" }

// RequireLong skips t, saying what it is and how to run it, unless the
// long tier runs.
func RequireLong(t testing.TB, what string) {
	t.Helper()
	if !Long() {
		t.Skipf("long tier (make test-all, or %s=1): %s", LongEnv, what)
	}
}
