package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/integration/world"
)

// signalsApp is the second example: not KTRDR-shaped, its images declared
// in its own [tool.ktrdr-images] table.
var signalsApp = filepath.Join("..", "examples", "signals")

// TestSecondApp builds examples/signals through the same code, with only
// its spec: the API and the CPU worker from the CLI with every probe in
// the image (the worker by its check command, having no port), then the
// CPU worker through the frontend image with buildctl, which must give the
// CLI's manifest digest, and the API through buildx bake with the bake
// file ktrdr-images bake-file generates for the spec. The CUDA worker is planned here (its pins are the
// lock's cu124 torch and nvidia-* wheels) and built by
// `make images APP=examples/signals`, not in CI: its CUDA layers alone are
// the size of KTRDR's worker-gpu.
// signalsNamespace is the registry namespace of TestSecondApp's images.
const signalsNamespace = "itest-signals"

func TestSecondApp(t *testing.T) {
	w := world.ForTest(t)
	o := offline(w, signalsNamespace)
	if err := o.Set("source-date-epoch", epoch); err != nil {
		t.Fatal(err)
	}
	rep, err := runBuild(t, w, buildArgs{dir: signalsApp, variants: []string{"api", "worker-cpu"}, opts: o, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	checkProbes(t, rep.Images)
	probes := map[string]map[string]string{}
	for _, img := range rep.Images {
		probes[img.Variant] = map[string]string{}
		for _, p := range img.Probes {
			probes[img.Variant][p.Name] = p.Detail
		}
	}
	for _, want := range []struct{ image, probe, detail string }{
		{"api", "serve GET :8080/healthz", `"service":"signals-api"`},
		{"api", "torch", "No module named 'torch'"},
		{"api", "user", "signals (1000:1000)"},
		{"worker-cpu", "torch", "+cpu"},
		{"worker-cpu", "check python -m signals.worker --check", "exit 0: signals worker ok: torch 2.6.0+cpu, cuda None, model /srv/signals/models/linear.json"},
	} {
		got, ok := probes[want.image][want.probe]
		if !ok {
			t.Errorf("%s: no probe %q (probes: %v)", want.image, want.probe, probes[want.image])
			continue
		}
		if !strings.Contains(got, want.detail) {
			t.Errorf("%s: probe %s says %q, expected it to contain %q", want.image, want.probe, got, want.detail)
		}
	}

	refs := map[string]string{}
	for _, img := range rep.Images {
		refs[img.Variant] = img.Ref
	}
	_, apiCfg, _ := imageOf(t, refs["api"])
	if _, ok := apiCfg.Config.ExposedPorts["8080/tcp"]; !ok || len(apiCfg.Config.ExposedPorts) != 1 {
		t.Errorf("api exposes %v, expected 8080/tcp", apiCfg.Config.ExposedPorts)
	}
	_, workerCfg, workerRaw := imageOf(t, refs["worker-cpu"])
	if len(workerCfg.Config.ExposedPorts) != 0 {
		t.Errorf("worker-cpu exposes %v, expected no port", workerCfg.Config.ExposedPorts)
	}
	if got := strings.Join(workerCfg.Config.Cmd, " "); got != "python -m signals.worker" {
		t.Errorf("worker-cpu's command is %q", got)
	}
	if !contains(workerCfg.Config.Env, "SIGNALS_MODELS=/srv/signals/models") {
		t.Errorf("worker-cpu's env lacks SIGNALS_MODELS: %v", workerCfg.Config.Env)
	}
	var raw struct {
		Config struct {
			Healthcheck struct{ Test []string }
		}
	}
	if err := json.Unmarshal(workerRaw, &raw); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(raw.Config.Healthcheck.Test, " "); got != "CMD python -m signals.worker --check" {
		t.Errorf("worker-cpu's healthcheck is %q, expected its check command", got)
	}

	// The same image through the frontend image.
	fe := frontendImage(t, w)
	ref := w.Registry + "/itest-signals-buildctl/signals-worker:cpu"
	if out, err := buildctlFrontendIn(t, w, fe, signalsApp, "worker-cpu", "type=image,name="+ref+",push=true,rewrite-timestamp=true"); err != nil {
		t.Fatalf("buildctl: %v\n%s", err, lastLines(out, 30))
	}
	d, _, _ := imageOf(t, ref)
	if cliDigest, _, _ := imageOf(t, refs["worker-cpu"]); d != cliDigest {
		t.Errorf("worker-cpu through the frontend image is %s, from the CLI %s", d, cliDigest)
	}
	t.Logf("worker-cpu: CLI and buildctl through the frontend: %s", d)

	// The same API image through buildx bake, from the bake file that
	// ktrdr-images bake-file writes for the app's spec.
	abs, err := filepath.Abs(signalsApp)
	if err != nil {
		t.Fatal(err)
	}
	bakeDir := t.TempDir()
	if out, err := runCmd(t, nil, "..", "go", "run", "./cmd/ktrdr-images", "bake-file", "--context", abs, "--output", filepath.Join(bakeDir, "docker-bake.hcl")); err != nil {
		t.Fatalf("bake-file: %v\n%s", err, out)
	}
	bin, env := buildxEnv(t, w)
	env = append(env, "FRONTEND="+fe, "REGISTRY="+w.Registry+"/itest-signals-bake", "PLATFORMS=linux/amd64")
	ba := buildArgsFor(w)
	for _, k := range sortedKeys(ba) {
		env = append(env, k+"="+ba[k])
	}
	// The context is outside the bake file's directory: buildx asks for
	// the fs.read entitlement (README: bake-file).
	if out, err := runCmd(t, env, bakeDir, bin, "bake", "--allow=fs.read="+abs, "api", "--progress", "plain", "--provenance=false",
		"--set", "*.output=type=image,push=true,rewrite-timestamp=true"); err != nil {
		t.Fatalf("bake: %v\n%s", err, lastLines(out, 30))
	}
	bakeDigest, _, _ := imageOf(t, w.Registry+"/itest-signals-bake/signals-api:latest")
	if cliDigest, _, _ := imageOf(t, refs["api"]); bakeDigest != cliDigest {
		t.Errorf("api through bake-file and buildx bake is %s, from the CLI %s", bakeDigest, cliDigest)
	}
	t.Logf("api: CLI and buildx bake (generated bake file): %s", bakeDigest)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
