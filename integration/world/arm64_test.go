package world

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// The world's linux/arm64 half: QEMU registered, buildkitd lists
// linux/arm64, the python base's tag is one OCI index of both platforms
// with the same Python, and the index serves Debian's arm64 builds of the
// CPU wheels: in the arm64 base, under emulation and with nothing but the
// world's index reachable, pip installs and imports fastapi, resolves
// torch==2.6.0+cpu from the CPU index to an aarch64 wheel, and torch==2.6.0
// from the default index to the CPU build without a single nvidia-* wheel
// or triton, as PyPI's aarch64 torch. Importing torch on arm64 is
// worker-cpu's probe (integration TestTwoPlatforms).
//
// Long tier: it needs the world's linux/arm64 half.
func TestArm64World(t *testing.T) {
	RequireLong(t, "the world's linux/arm64 half: emulation, the arm64 base, the aarch64 wheels")
	w := ForTest(t)
	w.RequireArm64(t)

	c, err := w.Client(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.ListWorkers(t.Context())
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, wk := range ws {
		for _, p := range wk.Platforms {
			plats = append(plats, p.OS+"/"+p.Architecture)
		}
	}
	if !strings.Contains(strings.Join(plats, " "), "linux/arm64") {
		t.Errorf("buildkitd's workers list %v, without linux/arm64", plats)
	}

	rc := newRegistryClient(w.Registry)
	ref := strings.TrimPrefix(w.PythonBase, w.Registry+"/")
	repo, tag, _ := strings.Cut(ref, ":")
	b, err := rc.manifest(t.Context(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(b, &idx); err != nil || idx.MediaType != ocispecs.MediaTypeImageIndex {
		t.Fatalf("%s is not an OCI index (%v): %s", w.PythonBase, err, b)
	}
	got := map[string]string{}
	for _, m := range idx.Manifests {
		got[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest.String()
	}
	if got["linux/amd64"] != w.PythonBaseDigest || got["linux/arm64"] != w.PythonBaseArm64Digest || len(got) != 2 {
		t.Errorf("%s lists %v, expected linux/amd64 %s and linux/arm64 %s", w.PythonBase, got, w.PythonBaseDigest, w.PythonBaseArm64Digest)
	}
	var pythons []string
	for _, base := range w.Bases {
		t.Logf("base %s %s: %d Debian packages, python %s", base.Ref, base.Digest, base.Packages, base.Python)
		pythons = append(pythons, base.Python)
	}
	for _, p := range pythons[1:] {
		if p != pythons[0] {
			t.Errorf("the bases' Pythons differ (%v): a venv made on amd64 would not fit the arm64 image", pythons)
		}
	}

	// Under emulation, pip resolves torch from both indexes without
	// installing it (--dry-run --report): installing torch's 2 GB under
	// QEMU took 13 minutes here, and worker-cpu's own arm64 probes
	// (integration TestTwoPlatforms) import it anyway. fastapi, small, is
	// installed and imported, with pydantic-core's arm64 wheel.
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	st := llb.Image(w.PythonBase+"@"+w.PythonBaseArm64Digest, llb.Platform(arm))
	resolve := "/venv/bin/pip install --dry-run --ignore-installed --quiet --report "
	st = pipRun(st, "[linux/arm64] venv + pip install fastapi, resolve torch from both indexes", "/bin/sh", "-c",
		"set -e; python3 -m venv /venv && /venv/bin/pip install --no-compile --index-url "+w.IndexURL+" fastapi && "+
			resolve+"/cpu.json --index-url "+w.IndexURL+" --extra-index-url "+w.CPUIndexURL+" torch==2.6.0+cpu && "+
			resolve+"/default.json --index-url "+w.IndexURL+" torch==2.6.0")
	outs := probe(t, w, st, ProbeOptions{Platform: &arm}, Cmd{Args: []string{"/venv/bin/python", "-c", `
import json, os, fastapi
def picked(path):
    return {i["metadata"]["name"]: [i["metadata"]["version"], i["download_info"]["url"]] for i in json.load(open(path))["install"]}
print(json.dumps({"machine": os.uname().machine, "fastapi": fastapi.__version__,
    "cpu": picked("/cpu.json"), "default": picked("/default.json")}))`}})
	if outs[0].ExitCode != 0 {
		t.Fatalf("probe failed: %s", outs[0])
	}
	var res struct {
		Machine, FastAPI string
		CPU, Default     map[string][2]string
	}
	if err := json.Unmarshal([]byte(lastLine(outs[0].Stdout)), &res); err != nil {
		t.Fatalf("%v: %s", err, outs[0])
	}
	t.Logf("linux/arm64: machine %s, fastapi %s", res.Machine, res.FastAPI)
	if res.Machine != "aarch64" || res.FastAPI == "" {
		t.Errorf("want aarch64 with fastapi imported, got machine %q fastapi %q", res.Machine, res.FastAPI)
	}
	for _, c := range []struct {
		index   string
		picked  map[string][2]string
		version string
		url     string
	}{
		{"CPU", res.CPU, "2.6.0+cpu", w.CPUIndexURL},
		{"default", res.Default, "2.6.0", w.IndexURL},
	} {
		t.Logf("%s index on linux/arm64 resolves: %v", c.index, c.picked)
		torch, ok := c.picked["torch"]
		if !ok || torch[0] != c.version || !strings.HasPrefix(torch[1], c.url) || !strings.Contains(torch[1], "aarch64") {
			t.Errorf("%s index on linux/arm64: torch resolved to %v, expected %s, an aarch64 wheel under %s", c.index, torch, c.version, c.url)
		}
		for name := range c.picked {
			if strings.HasPrefix(name, "nvidia-") || name == "triton" {
				t.Errorf("%s index on linux/arm64 resolves %s for torch: the arm64 torch is a CPU build and needs no CUDA wheel", c.index, name)
			}
		}
	}
}
