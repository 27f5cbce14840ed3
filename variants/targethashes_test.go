package variants

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// TestPinsHashOnlyTheTarget: a pin's hashes are those of what installs on
// the target, so that a lock re-made without (or with) another platform's
// wheels leaves every linux/amd64 install step as it was; on linux/arm64
// the aarch64 wheels' hashes are the ones required.
func TestPinsHashOnlyTheTarget(t *testing.T) {
	dir := filepath.Join("..", "examples", "ktrdr")
	proj, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, trimmed, err := uvlock.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, p := range trimmed.Packages {
		n := len(p.Wheels)
		p.Wheels = slices.DeleteFunc(slices.Clone(p.Wheels), func(a uvlock.Artifact) bool { return strings.Contains(a.URL, "aarch64") })
		dropped += n - len(p.Wheels)
	}
	if dropped == 0 {
		t.Fatal("examples/ktrdr/uv.lock has no aarch64 wheel to drop: the test checks nothing")
	}
	for _, name := range []string{BackendProd, WorkerCPU, BackendDev} {
		v, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		full, err := v.Pins(proj, lock, Target{Platform: "linux/amd64", Python: "3.13"})
		if err != nil {
			t.Fatal(err)
		}
		amd, err := v.Pins(proj, trimmed, Target{Platform: "linux/amd64", Python: "3.13"})
		if err != nil {
			t.Fatal(err)
		}
		arm, err := v.Pins(proj, lock, Target{Platform: "linux/arm64", Python: "3.13"})
		if err != nil {
			t.Fatal(err)
		}
		armHashes := map[string][]string{}
		for _, p := range arm.Pins {
			armHashes[p.Name] = p.Hashes
		}
		differ := 0
		for i, p := range full.Pins {
			if !slices.Equal(p.Hashes, amd.Pins[i].Hashes) {
				t.Errorf("%s: %s's linux/amd64 hashes change when the lock loses its aarch64 wheels: %v, then %v", name, p.Name, p.Hashes, amd.Pins[i].Hashes)
			}
			if a, ok := armHashes[p.Name]; ok && !slices.Equal(a, p.Hashes) {
				differ++
			}
		}
		if differ == 0 {
			t.Errorf("%s: no pin requires other hashes on linux/arm64 than on linux/amd64", name)
		}
	}
}
