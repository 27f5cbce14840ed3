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
// world's index reachable, pip installs fastapi and torch 2.6.0+cpu from the
// CPU index, and torch==2.6.0 from the default index is the CPU build
// without a single nvidia-* wheel, as PyPI's aarch64 torch. Importing that
// torch under QEMU aborts in libprotobuf (a measured defect of the
// stand-in, logged); any other import failure fails.
func TestArm64World(t *testing.T) {
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

	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	st := llb.Image(w.PythonBase+"@"+w.PythonBaseArm64Digest, llb.Platform(arm))
	cpu := pipRun(st, "[linux/arm64] venv + pip install fastapi torch (CPU index)", "/bin/sh", "-c",
		"python3 -m venv /venv && /venv/bin/pip install --index-url "+w.IndexURL+" --extra-index-url "+w.CPUIndexURL+" fastapi torch==2.6.0+cpu")
	def := pipRun(st, "[linux/arm64] venv + pip install torch (default index)", "/bin/sh", "-c",
		"python3 -m venv /venv && /venv/bin/pip install --index-url "+w.IndexURL+" torch==2.6.0")
	outs := probe(t, w, cpu, ProbeOptions{Platform: &arm}, Cmd{Args: []string{"/venv/bin/python", "-c", `
import json, os, fastapi, importlib.metadata as m
print(json.dumps({"machine": os.uname().machine, "fastapi": fastapi.__version__, "torch": m.version("torch"),
    "nvidia": [d.metadata["Name"] for d in m.distributions() if d.metadata["Name"].startswith("nvidia-")]}))`}},
		Cmd{Args: []string{"/venv/bin/python", "-c", `import torch; print(torch.__version__, torch.version.cuda, float(torch.arange(4.0).sum()))`}})
	if outs[0].ExitCode != 0 {
		t.Fatalf("import failed: %s", outs[0])
	}
	var res struct {
		Machine, FastAPI, Torch string
		Nvidia                  []string
	}
	if err := json.Unmarshal([]byte(lastLine(outs[0].Stdout)), &res); err != nil {
		t.Fatalf("%v: %s", err, outs[0])
	}
	t.Logf("linux/arm64: %+v", res)
	if res.Machine != "aarch64" || res.Torch != "2.6.0+cpu" || len(res.Nvidia) > 0 {
		t.Errorf("want aarch64 with torch 2.6.0+cpu and no nvidia-*, got %+v", res)
	}
	// torch itself: it computes, or aborts in libprotobuf, the stand-in's
	// known defect under QEMU (README), logged and checked for exactly
	// that; any other failure fails.
	switch imp := outs[1]; {
	case imp.ExitCode == 0 && strings.HasPrefix(lastLine(imp.Stdout), "2.6.0+cpu None 6.0"):
		t.Logf("linux/arm64 torch computes: %s", lastLine(imp.Stdout))
	case strings.Contains(imp.Stdout+imp.Stderr, "libprotobuf"):
		t.Logf("KNOWN DEFECT of the stand-in arm64 torch under QEMU: %s", lastLine(imp.Stderr))
	default:
		t.Errorf("import torch on linux/arm64: %s", imp)
	}
	outs = probe(t, w, def, ProbeOptions{Platform: &arm}, Cmd{Args: []string{"/bin/sh", "-c",
		"/venv/bin/pip list --format freeze"}})
	if outs[0].ExitCode != 0 {
		t.Fatalf("default-index torch: %s", outs[0])
	}
	t.Logf("default index on linux/arm64:\n%s", outs[0].Stdout)
	if strings.Contains(outs[0].Stdout, "nvidia-") || !strings.Contains(outs[0].Stdout, "torch==2.6.0\n") {
		t.Errorf("torch==2.6.0 from the default index on linux/arm64 should be the CPU build with no nvidia-* wheel:\n%s", outs[0].Stdout)
	}
}
