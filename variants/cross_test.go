package variants_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// crossGraphs builds variants for platform on a daemon of build.
func crossGraphs(t *testing.T, platform string, buildPlat *ocispecs.Platform, names []string, kv ...string) ([]variants.Image, error) {
	t.Helper()
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	in.BuildPlatform = buildPlat
	o := variants.DefaultOptions()
	o.Platform = platform
	for i := 0; i+1 < len(kv); i += 2 {
		if err := o.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return variants.Graphs(context.Background(), in, o, names)
}

// linux/arm64 on a linux/amd64 daemon: every install step runs natively
// (the exec's platform is amd64) for aarch64 (uv --python-platform); the
// image's venv is made on the arm64 base, and so are the runtime's steps.
// On an arm64 daemon the same image has no cross step at all.
func TestCrossBuilder(t *testing.T) {
	amd := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	imgs, err := crossGraphs(t, "linux/arm64", &amd, []string{"backend-prod", "worker-cpu"})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		g := decode(t, img.State, img)
		installs, venvs := 0, map[string]int{}
		for d, e := range g.execs() {
			op := g.ops[d]
			arch := ""
			if op.Platform != nil {
				arch = op.Platform.Architecture
			}
			cmd := cmdline(e)
			switch {
			case strings.Contains(cmd, "uv pip install"):
				installs++
				if arch != "amd64" {
					t.Errorf("%s: install step runs on %q, expected natively on amd64: %s", img.Variant.Name, arch, g.names[d])
				}
				if !strings.Contains(cmd, "--python-platform aarch64-manylinux_2_40") {
					t.Errorf("%s: install step without --python-platform for aarch64: %s", img.Variant.Name, cmd)
				}
				if !strings.Contains(strings.Join(mountIDs(e), " "), "uv/pkgs/linux-arm64") {
					t.Errorf("%s: install step's uv cache is not arm64's: %v", img.Variant.Name, mountIDs(e))
				}
			case strings.Contains(cmd, "-m venv"):
				venvs[arch]++
			case strings.Contains(cmd, "apt-get install") || strings.Contains(cmd, "useradd") || strings.Contains(cmd, "groupadd"):
				if arch != "arm64" {
					t.Errorf("%s: runtime step runs on %q, expected arm64: %s", img.Variant.Name, arch, g.names[d])
				}
			}
		}
		if installs == 0 {
			t.Errorf("%s: no install step", img.Variant.Name)
		}
		if venvs["arm64"] != 1 || venvs["amd64"] != 1 {
			t.Errorf("%s: venvs made per platform %v, expected one on arm64 (the image's) and one on amd64 (where packages install)", img.Variant.Name, venvs)
		}
		if img.Platform.Architecture != "arm64" || img.Config.Architecture != "arm64" {
			t.Errorf("%s: image platform %v, config architecture %s", img.Variant.Name, img.Platform, img.Config.Architecture)
		}
	}

	// A native arm64 daemon: the ordinary builder.
	imgs, err = crossGraphs(t, "linux/arm64", &arm, []string{"backend-prod"})
	if err != nil {
		t.Fatal(err)
	}
	g := decode(t, imgs[0].State, imgs[0])
	for d, e := range g.execs() {
		if strings.Contains(cmdline(e), "--python-platform") {
			t.Errorf("native arm64: a cross install step: %s", g.names[d])
		}
		if op := g.ops[d]; op.Platform != nil && op.Platform.Architecture != "arm64" {
			t.Errorf("native arm64: a step on %s: %s", op.Platform.Architecture, g.names[d])
		}
	}

	// linux/amd64 is untouched by any of it.
	imgs, err = crossGraphs(t, "linux/amd64", nil, []string{"backend-prod"})
	if err != nil {
		t.Fatal(err)
	}
	g = decode(t, imgs[0].State, imgs[0])
	for d, e := range g.execs() {
		if strings.Contains(cmdline(e), "--python-platform") {
			t.Errorf("amd64: a cross install step: %s", g.names[d])
		}
	}

	// pip cannot install for another platform without emulation.
	_, err = crossGraphs(t, "linux/arm64", &amd, []string{"backend-prod"}, "installer", "pip")
	if err == nil || !strings.Contains(err.Error(), "installer=pip") || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("pip for arm64 on amd64: %v", err)
	}
}

// mountIDs are the cache mount ids of an exec.
func mountIDs(e *pb.ExecOp) []string {
	var out []string
	for _, m := range e.Mounts {
		if m.CacheOpt != nil {
			out = append(out, m.CacheOpt.ID)
		}
	}
	return out
}
