package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuildxVersion is the buildx release the client tests run, installed
// from the Go module proxy into the world's cache directory.
const BuildxVersion = "v0.38.2"

const epoch = "1700000000"

var (
	amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64"}
)

var frontendOnce struct {
	sync.Once
	ref string
	err error
}

// frontendImage builds the frontend image from this tree and pushes it to
// the world's registry, once per test binary.
func frontendImage(t *testing.T, w *world.World) string {
	t.Helper()
	frontendOnce.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "ktrdr-frontend-")
		if err != nil {
			frontendOnce.err = err
			return
		}
		defer os.RemoveAll(dir)
		// Both platforms, as it is published: cmd/frontend cross-compiled.
		bins, err := build.CompileFrontends(ctx, "..", dir, []ocispecs.Platform{amd64, arm64})
		if err != nil {
			frontendOnce.err = err
			return
		}
		c, err := w.Client(ctx)
		if err != nil {
			frontendOnce.err = err
			return
		}
		defer c.Close()
		ref := w.Registry + "/ktrdr-images/frontend:test"
		_, err = build.FrontendImage(ctx, c, build.FrontendImageOptions{Binaries: bins, Ref: ref, Push: true, Progress: "quiet"})
		frontendOnce.ref, frontendOnce.err = ref, err
	})
	if frontendOnce.err != nil {
		t.Fatalf("building the frontend image: %v", frontendOnce.err)
	}
	return frontendOnce.ref
}

// buildArgsFor are the offline options as the frontend's build args: the
// world's bases, uv image and indexes, everything else the default (the uv
// installer, worker-gpu with CUDA from the nvidia-* wheels).
func buildArgsFor(w *world.World) map[string]string {
	return map[string]string{
		"PYTHON_BASE":       w.PythonBase,
		"UV_IMAGE":          w.UVImage,
		"UV_VERSION":        w.UVVersion,
		"INDEX_URL":         w.IndexURL,
		"CPU_INDEX_URL":     w.CPUIndexURL,
		"SOURCE_DATE_EPOCH": epoch,
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func runCmd(t *testing.T, env []string, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %s", filepath.Base(name), strings.Join(args[:min(len(args), 3)], " "), time.Since(start).Round(time.Second))
	return out.String(), err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// imageOf reads an image's manifest digest and config from the registry.
func imageOf(t *testing.T, ref string) (string, ocispecs.Image, []byte) {
	t.Helper()
	ctx := context.Background()
	src := inspect.NewRegistry(ref, nil)
	m, dgst, err := src.Manifest(ctx, amd64)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	rc, err := src.Blob(ctx, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dt, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var img ocispecs.Image
	if err := json.Unmarshal(dt, &img); err != nil {
		t.Fatal(err)
	}
	return dgst.String(), img, dt
}

func buildctlFrontend(t *testing.T, w *world.World, frontend, target, out string, extra ...string) (string, error) {
	return buildctlFrontendIn(t, w, frontend, example, target, out, extra...)
}

// buildctlFrontendIn builds target of the project in dir with buildctl
// through the frontend image.
func buildctlFrontendIn(t *testing.T, w *world.World, frontend, dir, target, out string, extra ...string) (string, error) {
	args := []string{"--addr", w.BuildkitAddr, "build", "--frontend", "gateway.v0",
		"--opt", "source=" + frontend, "--opt", "target=" + target,
		"--local", "context=" + dir, "--local", "dockerfile=" + dir, "--progress", "plain"}
	ba := buildArgsFor(w)
	for _, k := range sortedKeys(ba) {
		args = append(args, "--opt", "build-arg:"+k+"="+ba[k])
	}
	if out != "" {
		args = append(args, "--output", out)
	}
	args = append(args, extra...)
	return runCmd(t, nil, "", w.BuildctlBin, args...)
}

// TestBuildctlThroughFrontend builds every variant with buildctl through
// the frontend image pulled from the registry (the frontend probes each),
// asks it for its targets, and feeds it bad input.
func TestBuildctlThroughFrontend(t *testing.T) {
	w := world.ForTest(t)
	fe := frontendImage(t, w)
	// The frontend process (/bin/frontend, in a container buildkitd
	// starts for each build) is sampled for its peak RSS.
	rss := watchRSS("/bin/frontend")
	for _, v := range []string{"backend-prod", "worker-cpu", "worker-gpu", "backend-dev"} {
		t.Run(v, func(t *testing.T) {
			ref := fmt.Sprintf("%s/itest-buildctl/%s:%s", w.Registry, v, "x")
			out, err := buildctlFrontend(t, w, fe, v, "type=image,name="+ref+",push=true,rewrite-timestamp=true")
			if err != nil {
				t.Fatalf("buildctl: %v\n%s", err, lastLines(out, 30))
			}
			if _, img, _ := imageOf(t, ref); img.Config.User != "ktrdr" {
				t.Errorf("config user %q", img.Config.User)
			}
		})
	}
	peak, procs := rss.Stop()
	t.Logf("frontend image: peak RSS %.1f MiB over %d frontend processes (the four builds)", float64(peak)/(1<<20), procs)
	if procs == 0 {
		t.Error("no /bin/frontend process was seen: the memory of the frontend was not measured")
	} else if peak > memBound {
		t.Errorf("the frontend's peak RSS is %d bytes, bound %d", peak, memBound)
	}
	t.Run("targets", func(t *testing.T) {
		out, err := buildctlFrontend(t, w, fe, "", "", "--opt", "requestid=frontend.targets", "--opt", "frontend.caps=moby.buildkit.frontend.subrequests")
		if err != nil {
			t.Fatalf("%v\n%s", err, lastLines(out, 20))
		}
		for _, v := range []string{"backend-dev", "backend-prod", "worker-cpu", "worker-gpu"} {
			if !strings.Contains(out, v) {
				t.Errorf("targets lack %s:\n%s", v, lastLines(out, 20))
			}
		}
	})
	for name, tc := range map[string]struct {
		extra []string
		dir   string
		want  string
	}{
		"unknown target":    {extra: []string{"--opt", "target=worker-tpu"}, want: "expected one of backend-dev, backend-prod, worker-cpu, worker-gpu"},
		"bad build-arg":     {extra: []string{"--opt", "build-arg:UV_VERSION=latest", "--opt", "target=worker-cpu"}, want: `uv version "latest"`},
		"unknown build-arg": {extra: []string{"--opt", "build-arg:COLOUR=blue", "--opt", "target=worker-cpu"}, want: `unknown option "colour"`},
		"missing uv.lock":   {extra: []string{"--opt", "target=worker-cpu"}, dir: "nolock", want: "uv.lock"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"--addr", w.BuildkitAddr, "build", "--frontend", "gateway.v0", "--opt", "source=" + fe, "--progress", "plain"}
			ctxDir := example
			if tc.dir == "nolock" {
				ctxDir = copyExample(t)
				if err := os.Remove(filepath.Join(ctxDir, "uv.lock")); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, "--local", "context="+ctxDir, "--local", "dockerfile="+ctxDir)
			args = append(args, tc.extra...)
			out, err := runCmd(t, nil, "", w.BuildctlBin, args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("err %v, want output containing %q:\n%s", err, tc.want, lastLines(out, 15))
			}
		})
	}
}

// buildxEnv installs buildx (once) and makes a standalone builder with the
// remote driver on the world's buildkitd, in a config dir of its own.
func buildxEnv(t *testing.T, w *world.World) (string, []string) {
	t.Helper()
	dir := filepath.Join(w.CacheDir, "clients", "buildx-"+BuildxVersion)
	bin := filepath.Join(dir, "buildx")
	if _, err := os.Stat(bin); err != nil {
		out, err := runCmd(t, []string{"GOBIN=" + dir, "CGO_ENABLED=0"}, "", "go", "install",
			"-ldflags", "-X github.com/docker/buildx/version.Version="+BuildxVersion,
			"github.com/docker/buildx/cmd/buildx@"+BuildxVersion)
		if err != nil {
			t.Fatalf("installing buildx %s: %v\n%s", BuildxVersion, err, lastLines(out, 20))
		}
	}
	cfg := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + filepath.Join(cfg, "docker"), "BUILDX_CONFIG=" + filepath.Join(cfg, "buildx"), "BUILDX_BUILDER=ktrdr-itest", "BUILDX_NO_DEFAULT_ATTESTATIONS=1"}
	if out, err := runCmd(t, env, "", bin, "create", "--name", "ktrdr-itest", "--driver", "remote", w.BuildkitAddr); err != nil {
		t.Fatalf("buildx create: %v\n%s", err, out)
	}
	return bin, env
}

// TestBake builds the default group of docker-bake.hcl with real buildx,
// and lists the targets with --call=targets.
func TestBake(t *testing.T) {
	w := world.ForTest(t)
	fe := frontendImage(t, w)
	bin, env := buildxEnv(t, w)
	env = append(env, "FRONTEND="+fe, "REGISTRY="+w.Registry+"/itest-bake", "TAG=x", "PLATFORMS=linux/amd64")
	ba := buildArgsFor(w)
	for _, k := range sortedKeys(ba) {
		env = append(env, k+"="+ba[k])
	}
	out, err := runCmd(t, env, "..", bin, "bake", "--progress", "plain", "--provenance=false",
		"--set", "*.output=type=image,push=true,rewrite-timestamp=true")
	if err != nil {
		t.Fatalf("bake: %v\n%s", err, lastLines(out, 40))
	}
	for _, name := range []string{"ktrdr-backend:dev", "ktrdr-backend:prod", "ktrdr-worker-cpu:x", "ktrdr-worker-gpu:x"} {
		if _, img, _ := imageOf(t, w.Registry+"/itest-bake/"+name); img.Config.User != "ktrdr" {
			t.Errorf("%s: config user %q", name, img.Config.User)
		}
	}
	syntax := filepath.Join(t.TempDir(), "ktrdr.images")
	if err := os.WriteFile(syntax, []byte("# syntax="+fe+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, env, "..", bin, "build", "--call=targets", "-f", syntax, "examples/ktrdr")
	if err != nil {
		t.Fatalf("buildx build --call=targets: %v\n%s", err, lastLines(out, 30))
	}
	for _, v := range []string{"backend-dev", "backend-prod", "worker-cpu", "worker-gpu"} {
		if !strings.Contains(out, v) {
			t.Errorf("--call=targets lacks %s:\n%s", v, out)
		}
	}
	t.Logf("buildx --call=targets:\n%s", lastLines(out, 10))
}

// TestSameImageFromEveryClient: with SOURCE_DATE_EPOCH, backend-prod built
// by the CLI, by buildctl through the frontend image and by bake has the
// same config and the same manifest digest.
func TestSameImageFromEveryClient(t *testing.T) {
	w := world.ForTest(t)
	fe := frontendImage(t, w)
	o := offline(w, "itest-same-cli")
	if err := o.Set("source-date-epoch", epoch); err != nil {
		t.Fatal(err)
	}
	rep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	cliRef := rep.Images[0].Ref

	bctlRef := w.Registry + "/itest-same-buildctl/ktrdr-backend:prod"
	if out, err := buildctlFrontend(t, w, fe, "backend-prod", "type=image,name="+bctlRef+",push=true,rewrite-timestamp=true"); err != nil {
		t.Fatalf("buildctl: %v\n%s", err, lastLines(out, 30))
	}

	bin, env := buildxEnv(t, w)
	env = append(env, "FRONTEND="+fe, "REGISTRY="+w.Registry+"/itest-same-bake", "PLATFORMS=linux/amd64")
	ba := buildArgsFor(w)
	for _, k := range sortedKeys(ba) {
		env = append(env, k+"="+ba[k])
	}
	if out, err := runCmd(t, env, "..", bin, "bake", "backend-prod", "--progress", "plain", "--provenance=false",
		"--set", "*.output=type=image,push=true,rewrite-timestamp=true"); err != nil {
		t.Fatalf("bake: %v\n%s", err, lastLines(out, 30))
	}
	bakeRef := w.Registry + "/itest-same-bake/ktrdr-backend:prod"

	type got struct {
		name, digest string
		config       []byte
	}
	var all []got
	for _, r := range [][2]string{{"cli", cliRef}, {"buildctl", bctlRef}, {"bake", bakeRef}} {
		d, _, cfg := imageOf(t, r[1])
		all = append(all, got{r[0], d, cfg})
		t.Logf("%-8s %s %s", r[0], d, r[1])
	}
	for _, g := range all[1:] {
		if !bytes.Equal(g.config, all[0].config) {
			t.Errorf("%s's image config differs from the CLI's:\n%s\n%s", g.name, g.config, all[0].config)
		}
		if g.digest != all[0].digest {
			t.Errorf("%s's manifest digest %s differs from the CLI's %s", g.name, g.digest, all[0].digest)
		}
	}
}
