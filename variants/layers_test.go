package variants

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

const testRegistry = "https://pypi.org/simple"

// pin is a registry pin with one manylinux wheel of size bytes.
func pin(name, version string, size int64) uvlock.Pin {
	src := uvlock.Source{Registry: testRegistry}
	file := fmt.Sprintf("https://files.example/%s-%s-cp313-cp313-manylinux_2_17_x86_64.whl", strings.ReplaceAll(name, "-", "_"), version)
	p := &uvlock.Package{Name: name, Version: version, Source: src, Wheels: []uvlock.Artifact{{URL: file, Hash: "sha256:" + name + version, Size: size}}}
	return uvlock.Pin{Name: name, Version: version, Index: testRegistry, Source: src, Hashes: []string{"sha256:" + name + version}, Package: p}
}

func resolution(pins ...uvlock.Pin) *uvlock.Resolution {
	slices.SortFunc(pins, func(a, b uvlock.Pin) int { return strings.Compare(a.Name, b.Name) })
	return &uvlock.Resolution{Pins: pins}
}

var testRule = LayerRule{Threshold: DefaultLayerThreshold, Buckets: DefaultLayerBuckets, Budget: DefaultLayerBudget}

func assign(t *testing.T, r *uvlock.Resolution, rule LayerRule, fixed int) []PackageLayer {
	t.Helper()
	ls, err := AssignLayers("test", r, "3.13", "x86_64", rule, fixed)
	if err != nil {
		t.Fatal(err)
	}
	demoted := 0
	for _, p := range r.Pins {
		if c, ok := uvlock.ArtifactFor(p, "3.13", "x86_64"); ok && c.Size >= rule.Threshold && !slices.ContainsFunc(ls, func(l PackageLayer) bool { return l.Alone && l.Name == p.Name }) {
			demoted++
		}
	}
	t.Logf("%d pins: %d layers, %d heavy pins demoted to buckets", len(r.Pins), len(ls), demoted)
	// Every pin is in exactly one layer.
	seen := map[string]int{}
	for _, l := range ls {
		for _, p := range l.Pins {
			seen[p.Name]++
		}
	}
	for _, p := range r.Pins {
		if seen[p.Name] != 1 {
			t.Errorf("%s is in %d layers", p.Name, seen[p.Name])
		}
	}
	if len(seen) != len(r.Pins) {
		t.Errorf("%d pins in layers, %d resolved", len(seen), len(r.Pins))
	}
	return ls
}

// layerSet renders layers as "name=pins" strings, to compare assignments.
func layerSet(ls []PackageLayer) map[string]string {
	out := map[string]string{}
	for _, l := range ls {
		out[l.Name] = l.Describe()
	}
	return out
}

// changed lists the layers whose content differs between two assignments
// (added, removed or with other pins).
func changed(a, b []PackageLayer) []string {
	x, y := layerSet(a), layerSet(b)
	var out []string
	for n, d := range x {
		if y[n] != d {
			out = append(out, n)
		}
	}
	for n := range y {
		if _, ok := x[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func basePins() []uvlock.Pin {
	return []uvlock.Pin{
		pin("torch", "2.6.0", 900<<20), pin("numpy", "2.2.4", 16<<20), pin("scipy", "1.15.3", 35<<20),
		pin("fastapi", "0.115.11", 94_000), pin("anyio", "4.8.0", 95_000), pin("idna", "3.10", 70_000),
		pin("click", "8.1.8", 97_000), pin("h11", "0.14.0", 58_000), pin("sniffio", "1.3.1", 5_000),
		pin("starlette", "0.46.1", 72_000), pin("pyyaml", "6.0.2", 205_000), pin("jinja2", "3.1.6", 134_000),
	}
}

func TestLayersHeavyAloneSmallInBuckets(t *testing.T) {
	ls := assign(t, resolution(basePins()...), testRule, 7)
	var alone []string
	for _, l := range ls {
		if l.Alone {
			alone = append(alone, l.Name)
			if len(l.Pins) != 1 || l.Name != l.Pins[0].Name {
				t.Errorf("heavy layer %s holds %v", l.Name, l.Pins)
			}
		} else if !strings.HasPrefix(l.Name, "small ") || l.Size >= testRule.Threshold*int64(len(l.Pins)) {
			t.Errorf("bucket %s: %s", l.Name, l.Describe())
		}
	}
	if !slices.Equal(alone, []string{"numpy", "scipy", "torch"}) {
		t.Errorf("alone: %v", alone)
	}
}

func TestLayersOneSmallChangeOneBucket(t *testing.T) {
	base := assign(t, resolution(basePins()...), testRule, 7)
	bump := basePins()
	bump[3] = pin("fastapi", "0.116.0", 95_000)
	add := append(basePins(), pin("httpx", "0.28.1", 72_000))
	remove := basePins()[:len(basePins())-1]
	for name, pins := range map[string][]uvlock.Pin{"bump fastapi": bump, "add httpx": add, "remove jinja2": remove} {
		ch := changed(base, assign(t, resolution(pins...), testRule, 7))
		if len(ch) != 1 || !strings.HasPrefix(ch[0], "small ") {
			t.Errorf("%s changed layers %v, want one bucket", name, ch)
		}
	}
	big := basePins()
	big[0] = pin("torch", "2.7.0", 910<<20)
	if ch := changed(base, assign(t, resolution(big...), testRule, 7)); !slices.Equal(ch, []string{"torch"}) {
		t.Errorf("bumping torch changed %v, want torch's layer alone", ch)
	}
}

// A pin from another index than the locked one (a CPU torch) has no size
// in the lock: it is alone, as the accelerated builds are heavy.
func TestLayersForeignPinAlone(t *testing.T) {
	pins := basePins()
	pins[0].Index = "https://download.pytorch.org/whl/cpu"
	pins[0].Version = "2.6.0+cpu"
	pins[0].Hashes = nil
	ls := assign(t, resolution(pins...), testRule, 7)
	if ls[len(ls)-1].Alone || !slices.ContainsFunc(ls, func(l PackageLayer) bool { return l.Name == "torch" && l.Alone && len(l.Unsized) == 1 }) {
		t.Errorf("CPU torch is not alone and unsized: %v", layerSet(ls))
	}
}

// ktrdrShape is a resolution shaped like KTRDR's real worker-gpu set
// (173 packages in the lock): torch, its 17 CUDA wheels and triton, a
// dozen other packages over 1 MB, and 140 small ones.
func ktrdrShape() []uvlock.Pin {
	heavy := map[string]int64{
		"torch": 888 << 20, "nvidia-cudnn-cu12": 571 << 20, "nvidia-cublas-cu12": 393 << 20, "nvidia-cusparse-cu12": 216 << 20,
		"nvidia-cufft-cu12": 200 << 20, "nvidia-nccl-cu12": 201 << 20, "nvidia-cusolver-cu12": 158 << 20, "triton": 155 << 20,
		"nvidia-cusparselt-cu12": 150 << 20, "nvidia-curand-cu12": 56 << 20, "nvidia-cuda-nvrtc-cu12": 24 << 20,
		"nvidia-nvjitlink-cu12": 19 << 20, "nvidia-cuda-cupti-cu12": 10 << 20, "nvidia-nvshmem-cu12": 120 << 20,
		"nvidia-cufile-cu12": 1 << 20, "scipy": 35 << 20, "numpy": 16 << 20, "pandas": 12 << 20, "scikit-learn": 13 << 20,
		"sympy": 6 << 20, "pydantic-core": 2 << 20, "sqlalchemy": 3 << 20, "networkx": 2 << 20, "setuptools": 1 << 20,
		"asyncpg": 3 << 20, "uvloop": 4 << 20, "grpcio": 6 << 20, "cryptography": 4 << 20, "mypy": 12 << 20,
		"black": 2 << 20, "ruff": 11 << 20, "pyarrow": 42 << 20, "lxml": 5 << 20,
	}
	var pins []uvlock.Pin
	for n, s := range heavy {
		pins = append(pins, pin(n, "1.0", s))
	}
	for i := len(pins); i < 173; i++ {
		pins = append(pins, pin(fmt.Sprintf("small-package-%03d", i), "1.0", int64(10_000+i*3_000)))
	}
	return pins
}

func TestLayersBudgetOnKTRDRShape(t *testing.T) {
	// python:3.13-slim has 4 layers; the user, the runtime packages, the
	// venv (two steps) and the project (its copy and its install) make 10.
	const fixed = 10
	ls := assign(t, resolution(ktrdrShape()...), testRule, fixed)
	if n := fixed + len(ls); n > testRule.Budget {
		t.Errorf("%d layers, budget %d", n, testRule.Budget)
	}
	// The budget was hit: the smallest heavy pins joined their buckets,
	// the largest stayed alone.
	alone := map[string]bool{}
	for _, l := range ls {
		if l.Alone {
			alone[l.Name] = true
		}
	}
	for _, n := range []string{"torch", "nvidia-cudnn-cu12", "nvidia-cublas-cu12", "triton", "scipy", "pyarrow"} {
		if !alone[n] {
			t.Errorf("%s is not alone", n)
		}
	}
	if alone["nvidia-cufile-cu12"] || alone["setuptools"] {
		t.Errorf("the smallest heavy pins stayed alone although the budget was hit")
	}
	if fixed+len(ls) != testRule.Budget {
		t.Errorf("%d layers: the budget (%d) should be used up before heavy pins are demoted", fixed+len(ls), testRule.Budget)
	}

	// The example's shape fits as is.
	ls = assign(t, resolution(basePins()...), testRule, fixed)
	if fixed+len(ls) > testRule.Budget {
		t.Errorf("example shape: %d layers", fixed+len(ls))
	}
}

func TestLayersBudgetTooSmall(t *testing.T) {
	_, err := AssignLayers("worker-gpu", resolution(ktrdrShape()...), "3.13", "x86_64", LayerRule{Threshold: 1 << 20, Buckets: 8, Budget: 12}, 8)
	if err == nil || !strings.Contains(err.Error(), "variant worker-gpu: option layer-budget=12") || !strings.Contains(err.Error(), "layer-buckets") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "1MiB": 1 << 20, "16MB": 16e6, "512kB": 512e3, "1.5 GiB": 3 << 29} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "big", "-1", "1 TB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}
