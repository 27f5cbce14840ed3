package variants

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

func TestTable(t *testing.T) {
	all := All()
	if got := Names(); !slices.Equal(got, []string{BackendDev, BackendProd, WorkerCPU, WorkerGPU}) {
		t.Fatalf("names %v", got)
	}
	for _, v := range all {
		if v.Description == "" || strings.Contains(v.Description, "\n") {
			t.Errorf("%s: description must be one line", v.Name)
		}
	}
	// All returns copies: changing one does not change the table.
	all[0].Extras[0] = "changed"
	if v, _ := Lookup(BackendDev); v.Extras[0] != "ml" {
		t.Error("All shares its slices with the table")
	}
	if _, err := Lookup("worker-tpu"); err == nil || !strings.Contains(err.Error(), "expected one of backend-dev, backend-prod, worker-cpu, worker-gpu") {
		t.Errorf("Lookup error: %v", err)
	}
}

func example(t *testing.T) (*pyproject.Project, *uvlock.Lock) {
	t.Helper()
	proj, lock, err := uvlock.LoadProject(filepath.Join("..", "examples", "ktrdr"))
	if err != nil {
		t.Fatal(err)
	}
	return proj, lock
}

func pins(t *testing.T, name string, target Target) *uvlock.Resolution {
	t.Helper()
	proj, lock := example(t)
	v, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Pins(proj, lock, target)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func set(r *uvlock.Resolution) map[string]string {
	out := map[string]string{}
	for _, p := range r.Pins {
		out[p.Name] = p.Version
	}
	return out
}

func withPrefix(m map[string]string, prefix string) []string {
	var out []string
	for n := range m {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// The assertions the milestone stands on, against the example project.
func TestExampleVariants(t *testing.T) {
	amd := Target{Platform: "linux/amd64", Python: "3.13"}
	arm := Target{Platform: "linux/arm64", Python: "3.13"}
	_, lock := example(t)
	var lockedNvidia []string
	for _, p := range lock.Packages {
		if strings.HasPrefix(p.Name, "nvidia-") {
			lockedNvidia = append(lockedNvidia, p.Name)
		}
	}
	slices.Sort(lockedNvidia)
	if len(lockedNvidia) == 0 {
		t.Fatal("the example lock has no nvidia-* packages: it no longer has KTRDR's shape")
	}

	prod := set(pins(t, BackendProd, amd))
	for _, n := range []string{"torch", "scikit-learn"} {
		if _, ok := prod[n]; ok {
			t.Errorf("backend-prod has %s", n)
		}
	}
	if _, ok := prod["fastapi"]; !ok {
		t.Error("backend-prod has no fastapi")
	}

	cpu := set(pins(t, WorkerCPU, amd))
	// The example's lock was made against the offline world's index, which
	// serves linux/arm64 wheels too: on arm64 worker-cpu resolves, with the
	// lock's markers evaluated for aarch64 (no nvidia-*, no triton).
	armCPU := set(pins(t, WorkerCPU, arm))
	for arch, s := range map[string]map[string]string{"amd64": cpu, "arm64": armCPU} {
		if _, ok := s["torch"]; !ok {
			t.Errorf("worker-cpu %s has no torch", arch)
		}
		if nv := withPrefix(s, "nvidia-"); len(nv) > 0 {
			t.Errorf("worker-cpu %s has %v", arch, nv)
		}
		if _, ok := s["triton"]; ok {
			t.Errorf("worker-cpu %s has triton", arch)
		}
	}
	// Everything backend-prod has, worker-cpu has at the same version.
	for n, v := range prod {
		if cpu[n] != v {
			t.Errorf("worker-cpu has %s %q, backend-prod %q", n, cpu[n], v)
		}
	}

	gpuRes := pins(t, WorkerGPU, amd)
	gpu := set(gpuRes)
	if got := withPrefix(gpu, "nvidia-"); !slices.Equal(got, lockedNvidia) {
		t.Errorf("worker-gpu nvidia packages %v, want the whole locked stack %v", got, lockedNvidia)
	}
	if p, _ := gpuRes.Pin("torch"); strings.Contains(p.Version, "+cpu") || p.Index != lock.DefaultRegistry() {
		t.Errorf("worker-gpu torch %+v", p)
	}
	base := set(pins(t, WorkerGPU, Target{Platform: "linux/amd64", CUDAFromBase: true}))
	if nv := withPrefix(base, "nvidia-"); len(nv) > 0 {
		t.Errorf("worker-gpu with a CUDA base still pins %v", nv)
	}

	// backend-dev is worker-cpu plus the dev group.
	dev := set(pins(t, BackendDev, amd))
	proj, _ := example(t)
	groupOnly, err := uvlock.Resolve(proj, lock, uvlock.Request{Groups: []string{"dev"}, Env: mustEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for n, v := range cpu {
		want[n] = v
	}
	for n, v := range set(groupOnly) {
		want[n] = v
	}
	if !mapsEqual(dev, want) {
		t.Errorf("backend-dev != worker-cpu + dev group:\n got  %v\n want %v", dev, want)
	}
	if _, ok := dev["pytest"]; !ok {
		t.Error("backend-dev has no pytest")
	}
	t.Logf("packages: backend-prod %d, worker-cpu %d, worker-gpu %d (CUDA base %d), backend-dev %d",
		len(prod), len(cpu), len(gpu), len(base), len(dev))
}

func TestPinsBadTarget(t *testing.T) {
	proj, lock := example(t)
	v, _ := Lookup(WorkerCPU)
	for _, tc := range []struct {
		target Target
		want   string
	}{
		{Target{Platform: "linux/s390x"}, "option platform"},
		{Target{Platform: "linux/amd64", Python: "3"}, "option python"},
		{Target{Platform: "linux/amd64", Python: "3.10"}, "requires-python"},
	} {
		_, err := v.Pins(proj, lock, tc.target)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "variant worker-cpu") {
			t.Errorf("%+v: %v", tc.target, err)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func mustEnv(t *testing.T) pep508.Environment {
	t.Helper()
	p, err := pep508.ParsePlatform("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	e, err := pep508.EnvironmentFor(p, "3.13")
	if err != nil {
		t.Fatal(err)
	}
	return e
}
