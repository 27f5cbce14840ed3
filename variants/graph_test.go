package variants_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

var example = filepath.Join("..", "examples", "ktrdr")

// graph is a decoded definition: every op by digest, with custom names.
type graph struct {
	t     *testing.T
	ops   map[digest.Digest]*pb.Op
	names map[digest.Digest]string
	order []digest.Digest
	root  digest.Digest
	raw   []byte
}

func decode(t *testing.T, st llb.State, img variants.Image) graph {
	t.Helper()
	def, err := st.Marshal(context.Background(), llb.Platform(img.Platform))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := build.DecodeOps(def)
	if err != nil {
		t.Fatal(err)
	}
	g := graph{t: t, ops: map[digest.Digest]*pb.Op{}, names: map[digest.Digest]string{}}
	for _, op := range ops {
		g.ops[op.Digest] = op.Op
		g.names[op.Digest] = op.Name
		g.order = append(g.order, op.Digest)
		g.raw = append(g.raw, op.Digest...)
	}
	term := ops[len(ops)-1].Op
	g.root = digest.Digest(term.Inputs[0].Digest)
	return g
}

func (g graph) has(d digest.Digest) bool { _, ok := g.ops[d]; return ok }

// find returns the digests of ops whose custom name starts with prefix.
func (g graph) find(prefix string) []digest.Digest {
	var out []digest.Digest
	for _, d := range g.order {
		if strings.HasPrefix(g.names[d], prefix) {
			out = append(out, d)
		}
	}
	return out
}

func (g graph) one(prefix string) digest.Digest {
	g.t.Helper()
	ds := g.find(prefix)
	if len(ds) != 1 {
		g.t.Fatalf("want one op named %q, found %d", prefix, len(ds))
	}
	return ds[0]
}

func (g graph) ancestors(d digest.Digest) map[digest.Digest]bool {
	seen := map[digest.Digest]bool{}
	stack := []digest.Digest{d}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[x] {
			continue
		}
		seen[x] = true
		for _, in := range g.ops[x].Inputs {
			stack = append(stack, digest.Digest(in.Digest))
		}
	}
	return seen
}

func (g graph) execs() map[digest.Digest]*pb.ExecOp {
	out := map[digest.Digest]*pb.ExecOp{}
	for d, op := range g.ops {
		if e := op.GetExec(); e != nil {
			out[d] = e
		}
	}
	return out
}

// mkfiles returns the requirements files every install step of the graph
// writes (printf LINES > /tmp/reqs/requirements-N.txt), one line each.
func (g graph) mkfiles() string {
	var b strings.Builder
	for _, e := range g.execs() {
		for _, part := range strings.Split(cmdline(e), " && ") {
			if !strings.HasPrefix(part, "printf ") || !strings.Contains(part, "> /tmp/reqs/") {
				continue
			}
			for _, q := range strings.Split(part, "' '") {
				q = strings.TrimPrefix(q, `printf '%s\n' '`)
				q, _, _ = strings.Cut(q, "' > /tmp/reqs/")
				b.WriteString(q + "\n")
			}
		}
	}
	return b.String()
}

func cmdline(e *pb.ExecOp) string { return strings.Join(e.Meta.Args, " ") }

type built struct {
	images map[string]variants.Image
	graphs map[string]graph
}

func buildAll(t *testing.T, names []string, kv ...string) built {
	t.Helper()
	return buildEdited(t, names, nil, kv...)
}

// buildEdited is buildAll on inputs that edit changes first (the lock, to
// make a package sdist-only).
func buildEdited(t *testing.T, names []string, edit func(*variants.Inputs), kv ...string) built {
	t.Helper()
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&in)
	}
	o := variants.DefaultOptions()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := o.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := variants.Graphs(context.Background(), in, o, names)
	if err != nil {
		t.Fatal(err)
	}
	b := built{images: map[string]variants.Image{}, graphs: map[string]graph{}}
	for _, img := range imgs {
		b.images[img.Variant.Name] = img
		b.graphs[img.Variant.Name] = decode(t, img.State, img)
	}
	return b
}

var installers = []string{"uv", "pip"}

// layerDigests maps each package layer of an image (by its pins) to the
// digest of its diff vertex, and checks that each is an input of the
// image's merge.
func layerDigests(t *testing.T, b built, name string) map[string]digest.Digest {
	t.Helper()
	plans, err := build.Plans(context.Background(), []variants.Image{b.images[name]})
	if err != nil {
		t.Fatal(err)
	}
	g := b.graphs[name]
	inputs := map[digest.Digest]bool{}
	for _, in := range g.ops[g.root].Inputs {
		inputs[digest.Digest(in.Digest)] = true
	}
	out := map[string]digest.Digest{}
	for _, l := range plans[0].Env {
		if !inputs[l.Digest] {
			t.Errorf("%s: package layer %s (%s) is not an input of the image's merge", name, l.Name, l.Digest)
		}
		out[strings.Join(l.Packages, " ")] = l.Digest
	}
	return out
}

// The same pins are the same layer vertex in every variant that has them
// (so one blob), and different pins are different vertices.
func TestSharedLayersByDigest(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			b := buildAll(t, nil, "installer", inst)
			layers := map[string]map[string]digest.Digest{}
			for name := range b.graphs {
				layers[name] = layerDigests(t, b, name)
				if !b.images[name].Shared {
					t.Errorf("%s: expected shared layers", name)
				}
			}
			// Every pin set two variants share has one digest, and no two
			// pin sets share a digest.
			byDigest := map[digest.Digest]string{}
			for name, ls := range layers {
				for pins, d := range ls {
					if other, ok := byDigest[d]; ok && other != pins {
						t.Errorf("%s: layers %q and %q have one vertex", name, pins, other)
					}
					byDigest[d] = pins
					for other, ols := range layers {
						if od, ok := ols[pins]; ok && od != d {
							t.Errorf("layer %q: %s in %s, %s in %s", pins, d, name, od, other)
						}
					}
				}
			}
			for _, pkg := range []string{"numpy==2.2.4", "scipy==1.15.3", "scikit-learn==1.4.2", "pandas==2.2.3"} {
				for _, name := range []string{"worker-cpu", "worker-gpu", "backend-dev"} {
					if _, ok := layers[name][pkg]; !ok {
						t.Errorf("%s has no layer of %s alone", name, pkg)
					}
				}
			}
			for _, pkg := range []string{"pandas==2.2.3", "numpy==2.2.4", "sqlalchemy==2.0.40"} {
				if _, ok := layers["backend-prod"][pkg]; !ok {
					t.Errorf("backend-prod has no layer of %s alone", pkg)
				}
			}
			cpuTorch := "torch==2.6.0+cpu (https://download.pytorch.org/whl/cpu)"
			if _, ok := layers["worker-cpu"][cpuTorch]; !ok {
				t.Errorf("worker-cpu has no CPU torch layer: %v", layers["worker-cpu"])
			}
			if _, ok := layers["worker-gpu"]["torch==2.6.0"]; !ok {
				t.Errorf("worker-gpu has no CUDA torch layer")
			}
		})
	}
}

func TestProdNeverTouchesML(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			g := buildAll(t, []string{"backend-prod"}, "installer", inst).graphs["backend-prod"]
			for _, e := range g.execs() {
				c := cmdline(e)
				for _, bad := range []string{"--extra ml", "download.pytorch.org", "torch", "nvidia"} {
					if strings.Contains(c, bad) {
						t.Errorf("backend-prod runs %q", c)
					}
				}
			}
			if files := g.mkfiles(); strings.Contains(files, "torch") || strings.Contains(files, "scikit-learn") {
				t.Errorf("backend-prod requirements name ML packages:\n%s", files)
			}
		})
	}
}

func TestCPUVariantsNeverInstallCUDA(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			b := buildAll(t, []string{"worker-cpu", "backend-dev"}, "installer", inst)
			for name, g := range b.graphs {
				files := g.mkfiles()
				if strings.Contains(files, "nvidia-") || strings.Contains(files, "triton") {
					t.Errorf("%s: requirements name CUDA packages:\n%s", name, files)
				}
				torchFromCPU := false
				for _, e := range g.execs() {
					if strings.Contains(cmdline(e), "https://download.pytorch.org/whl/cpu") {
						torchFromCPU = true
					}
				}
				if !strings.Contains(files, "torch==2.6.0+cpu") {
					t.Errorf("%s: %s does not pin the CPU torch:\n%s", name, inst, files)
				}
				if !torchFromCPU {
					t.Errorf("%s: torch is not installed from the CPU index", name)
				}
				if strings.Contains(files, "torch==2.6.0\n") || strings.Contains(files, "torch==2.6.0 ") {
					t.Errorf("%s: pins PyPI's (CUDA) torch", name)
				}
			}
		})
	}
}

func TestGPUModes(t *testing.T) {
	// CUDA from the locked wheels, on the Python base: shared layers.
	wheels := buildAll(t, []string{"worker-gpu"}, "installer", "pip").graphs["worker-gpu"]
	if f := wheels.mkfiles(); !strings.Contains(f, "nvidia-cublas-cu12==12.4.5.8") || !strings.Contains(f, "torch==2.6.0 --hash=sha256:") {
		t.Errorf("wheels mode: requirements lack the CUDA stack:\n%s", f)
	}
	// CUDA from a CUDA base: nvidia-* left out, and the image cannot share
	// the Python base's layers, so it is assembled by plain copies.
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			b := buildAll(t, []string{"worker-gpu"}, "installer", inst, "cuda-base", "127.0.0.1:5000/offline/python-cuda:3.13", "cuda-index-url", "http://127.0.0.1:8080/whl/cu126")
			img, g := b.images["worker-gpu"], b.graphs["worker-gpu"]
			if img.Shared {
				t.Error("worker-gpu on a CUDA base claims shared layers")
			}
			if len(g.find("[runtime] copy /app from the builder")) != 1 || len(g.find("[layer] project")) != 1 {
				t.Error("worker-gpu on a CUDA base is not assembled by one copy of /app and the project's diff")
			}
			// The copied environment comes from the builder before the
			// project step: a code change does not copy it again.
			cp := g.one("[runtime] copy /app from the builder")
			if g.ancestors(cp)[g.one("[builder] copy ktrdr")] {
				t.Error("the copied environment depends on the project's code")
			}
			if f := g.mkfiles(); strings.Contains(f, "nvidia-") {
				t.Errorf("CUDA-base mode installs nvidia wheels:\n%s", f)
			}
			fromCUDAIndex := false
			for _, e := range g.execs() {
				if strings.Contains(cmdline(e), "http://127.0.0.1:8080/whl/cu126") {
					fromCUDAIndex = true
				}
			}
			if !fromCUDAIndex {
				t.Error("torch is not installed from the CUDA index")
			}
			if !strings.Contains(img.Base, "python-cuda") {
				t.Errorf("base %s", img.Base)
			}
		})
	}
}

func TestUserBeforeFilesAndOwnership(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			b := buildAll(t, nil, "installer", inst, "cuda-base", "127.0.0.1:5000/offline/python-cuda:3.13")
			for name, g := range b.graphs {
				u := g.one("[runtime] add user ktrdr (999:999)")
				if c := cmdline(g.execs()[u]); !strings.Contains(c, "groupadd --system --gid 999 ktrdr") || !strings.Contains(c, "useradd --system --no-log-init") {
					t.Errorf("%s: user step %q", name, c)
				}
				root := g.ops[g.root]
				if b.images[name].Shared {
					// Merge inputs: the base, then the user layer, then the rest.
					userLayer := digest.Digest(root.Inputs[1].Digest)
					if g.names[userLayer] != "[layer] user" {
						t.Errorf("%s: the first layer on the base is %q, not the user", name, g.names[userLayer])
					}
				} else if !g.ancestors(g.one("[runtime] copy /app from the builder"))[u] {
					t.Errorf("%s: the copied app does not descend from the user step", name)
				}
				for d, e := range g.execs() {
					n, c := g.names[d], cmdline(e)
					if strings.Contains(c, "chown") {
						t.Errorf("%s: a step changes owners: %s", name, c)
					}
					if strings.HasPrefix(n, "[builder] uv ") || strings.HasPrefix(n, "[builder] pip install") || strings.HasPrefix(n, "[builder] create venv") {
						if e.Meta.User != "999:999" {
							t.Errorf("%s: %q runs as %q, not the app user", name, n, e.Meta.User)
						}
					}
				}
				for d, op := range g.ops {
					f := op.GetFile()
					if f == nil {
						continue
					}
					for _, a := range f.Actions {
						var dest string
						var owner *pb.ChownOpt
						if c := a.GetCopy(); c != nil {
							dest, owner = c.Dest, c.Owner
						} else if m := a.GetMkdir(); m != nil {
							dest, owner = m.Path, m.Owner
						}
						if strings.HasPrefix(dest, "/app") {
							if owner == nil || owner.User.GetByID() != 999 || owner.Group.GetByID() != 999 {
								t.Errorf("%s: %q writes %s without giving it to 999:999", name, g.names[d], dest)
							}
						}
					}
				}
			}
		})
	}
}

func TestNothingBuildTimeInRuntimeLayers(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			b := buildAll(t, nil, "installer", inst, "toolchain-mode", "always")
			for name, g := range b.graphs {
				for d, e := range g.execs() {
					n := g.names[d]
					mounts := map[string]*pb.Mount{}
					for _, m := range e.Mounts {
						mounts[m.Dest] = m
					}
					if strings.Contains(n, "apt-get install") {
						for _, dir := range []string{"/var/lib/apt/lists", "/var/cache/apt"} {
							m := mounts[dir]
							if m == nil || m.MountType != pb.MountType_CACHE || m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED {
								t.Errorf("%s: %q does not keep %s in a locked cache mount", name, n, dir)
							}
						}
					}
					if strings.HasPrefix(n, "[builder] uv ") || strings.HasPrefix(n, "[builder] pip install") {
						if m := mounts["/tmp"]; m == nil || m.MountType != pb.MountType_TMPFS {
							t.Errorf("%s: %q has no tmpfs on /tmp", name, n)
						}
						cache := "/tmp/.uv-cache"
						if inst == "pip" {
							cache = "/tmp/.pip-cache"
						}
						if m := mounts[cache]; m == nil || m.MountType != pb.MountType_CACHE {
							t.Errorf("%s: %q keeps its cache outside a cache mount", name, n)
						}
					}
				}
				// Every merged layer that descends from the toolchain is a
				// diff whose lower side descends from it too, so the
				// toolchain cancels out and never reaches the image.
				tc := g.one("[builder] toolchain")
				root := g.ops[g.root]
				for _, in := range root.Inputs[1:] {
					d := digest.Digest(in.Digest)
					diff := g.ops[d].GetDiff()
					if diff == nil {
						t.Fatalf("%s: merge input %q is not a diff", name, g.names[d])
					}
					upper := digest.Digest(g.ops[d].Inputs[diff.Upper.Input].Digest)
					if !g.ancestors(upper)[tc] {
						continue
					}
					if diff.Lower.Input < 0 || !g.ancestors(digest.Digest(g.ops[d].Inputs[diff.Lower.Input].Digest))[tc] {
						t.Errorf("%s: layer %q carries the toolchain", name, g.names[d])
					}
				}
			}
		})
	}
}

// Every install step shares one cache per installer and platform: the
// cache's content never enters a layer, and a per-layer id would only make
// the same wheel be fetched again.
func TestOneCachePerInstaller(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			b := buildAll(t, nil, "installer", inst)
			ids := map[string]bool{}
			for _, g := range b.graphs {
				for _, e := range g.execs() {
					for _, m := range e.Mounts {
						if m.MountType == pb.MountType_CACHE && strings.Contains(m.CacheOpt.ID, "/"+inst+"/") {
							ids[m.CacheOpt.ID] = true
						}
					}
				}
			}
			if len(ids) != 1 {
				t.Fatalf("cache ids %v: want one", ids)
			}
			for id := range ids {
				if !strings.Contains(id, "linux-amd64") {
					t.Errorf("cache id %s does not name the platform", id)
				}
			}
		})
	}
}

// The toolchain is installed only for layers with a package the lock has
// no wheel for on the target (toolchain-mode auto), for every layer with
// toolchain-mode always, and for none with never.
func TestToolchainOnlyWhenNeeded(t *testing.T) {
	graphs := func(sdistOnly string, kv ...string) map[string]graph {
		t.Helper()
		return buildEdited(t, nil, func(in *variants.Inputs) {
			// The lock as it would be if the package had no wheel for
			// linux/amd64: only its sdist.
			for _, p := range in.Lock.PackagesNamed(sdistOnly) {
				p.Wheels = nil
				p.Sdist = &uvlock.Artifact{URL: "http://127.0.0.1:3141/files/" + p.Name + "-" + p.Version + ".tar.gz", Hash: "sha256:00", Size: 130_000}
			}
		}, kv...).graphs
	}
	// installsOnToolchain lists the install steps that descend from the
	// toolchain.
	installsOnToolchain := func(g graph) []string {
		tcs := g.find("[builder] toolchain")
		var out []string
		for d := range g.execs() {
			n := g.names[d]
			if !strings.HasPrefix(n, "[builder] uv ") || strings.Contains(n, "check uv") {
				continue
			}
			for _, tc := range tcs {
				if g.ancestors(d)[tc] {
					out = append(out, n)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	for name, g := range graphs("") {
		if on := installsOnToolchain(g); len(on) != 0 || len(g.find("[builder] toolchain")) != 0 {
			t.Errorf("%s: every pin has a wheel, yet the toolchain is installed for %v", name, on)
		}
	}
	for name, g := range graphs("pyyaml") {
		on := installsOnToolchain(g)
		if len(on) != 1 || !strings.Contains(on[0], "small ") {
			t.Errorf("%s: pyyaml has only an sdist: want its bucket alone on the toolchain, got %v", name, on)
		}
	}
	for name, g := range graphs("pyyaml", "toolchain-mode", "never") {
		if len(g.find("[builder] toolchain")) != 0 {
			t.Errorf("%s: toolchain-mode never installs the toolchain", name)
		}
	}
	for name, g := range graphs("", "toolchain-mode", "always") {
		var installs int
		for d := range g.execs() {
			if n := g.names[d]; strings.HasPrefix(n, "[builder] uv ") && !strings.Contains(n, "check uv") {
				installs++
			}
		}
		if on := installsOnToolchain(g); len(on) != installs {
			t.Errorf("%s: toolchain-mode always: %d of %d installs on the toolchain", name, len(on), installs)
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, inst := range installers {
		t.Run(inst, func(t *testing.T) {
			a := buildAll(t, nil, "installer", inst, "source-date-epoch", "1700000000")
			b := buildAll(t, nil, "installer", inst, "source-date-epoch", "1700000000")
			for name := range a.graphs {
				if !bytes.Equal(a.graphs[name].raw, b.graphs[name].raw) {
					t.Errorf("%s: two builds of the same inputs differ", name)
				}
			}
			// Built alone, a variant has the same graph as built with the
			// others: sharing never depends on what else is requested.
			alone := buildAll(t, []string{"backend-dev"}, "installer", inst, "source-date-epoch", "1700000000")
			if !bytes.Equal(alone.graphs["backend-dev"].raw, a.graphs["backend-dev"].raw) {
				t.Error("backend-dev built alone differs from backend-dev built with the others")
			}
		})
	}
}

func TestImageConfig(t *testing.T) {
	b := buildAll(t, nil, "source-date-epoch", "1700000000", "label.org.opencontainers.image.source", "https://github.com/kpiteira/ktrdr")
	prod := b.images["backend-prod"].Config
	c := prod.Config
	if c.User != "ktrdr" || c.WorkingDir != "/app" || !slices.Equal(c.Entrypoint, []string{"/usr/bin/tini", "--"}) {
		t.Errorf("prod config %+v", c)
	}
	if !slices.Equal(c.Cmd, []string{"uvicorn", "ktrdr.api.main:app", "--host", "0.0.0.0", "--port", "8000"}) {
		t.Errorf("prod cmd %v", c.Cmd)
	}
	if _, ok := c.ExposedPorts["8000/tcp"]; !ok || c.Healthcheck == nil || !strings.Contains(strings.Join(c.Healthcheck.Test, " "), "http://localhost:8000/api/v1/health") {
		t.Errorf("prod port/health %+v %+v", c.ExposedPorts, c.Healthcheck)
	}
	if !slices.Contains(c.Env, "PATH=/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Errorf("prod env %v", c.Env)
	}
	if c.Labels["org.opencontainers.image.created"] != "2023-11-14T22:13:20Z" || c.Labels["org.opencontainers.image.source"] == "" || c.Labels["org.opencontainers.image.title"] != "ktrdr-backend" {
		t.Errorf("labels %v", c.Labels)
	}
	gpu := b.images["worker-gpu"].Config.Config
	if _, ok := gpu.Volumes["/app/data"]; !ok || gpu.Cmd[0] != "python" {
		t.Errorf("gpu config %+v", gpu)
	}
	dev := b.images["backend-dev"].Config.Config
	if !slices.Contains(dev.Cmd, "--reload") || !slices.Contains(dev.Cmd, "--reload-dir") {
		t.Errorf("dev cmd %v", dev.Cmd)
	}
}

func TestBadOptions(t *testing.T) {
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"python-base", "Python:3.13 slim"}, "option python-base"},
		{[]string{"cuda-base", "nvidia/cuda:@@"}, "option cuda-base"},
		{[]string{"platform", "linux/riscv64"}, "option platform"},
		{[]string{"uv-version", "latest"}, "uv version \"latest\""},
		{[]string{"index-url", "ftp://mirror/simple"}, "option index-url"},
		{[]string{"cpu-index-url", "not a url"}, "option cpu-index-url"},
		{[]string{"port.worker-cpu", "70000"}, "option port.worker-cpu=70000"},
		{[]string{"user", "Root User"}, "user name"},
		{[]string{"uid", "0"}, "user id 0"},
		{[]string{"installer", "poetry"}, "option installer"},
		{[]string{"app.backend-prod", "ktrdr.api.main"}, "option app.backend-prod"},
		{[]string{"toolchain", "gcc,Build Essential"}, "option toolchain"},
		{[]string{"registry", "example.com/UPPER"}, "options registry/tag/image"},
		{[]string{"layer-threshold", "big"}, "option layer-threshold=\"big\": expected a size"},
		{[]string{"layer-threshold", "0"}, "option layer-threshold=0"},
		{[]string{"layer-buckets", "0"}, "option layer-buckets=0: expected a number from 1 to 64"},
		{[]string{"layer-budget", "200"}, "option layer-budget=200: expected a number from 10 to 125"},
		// backend-dev needs 4 fixed layers (no base layers without a
		// daemon) and 8 buckets: 10 cannot hold them.
		{[]string{"layer-budget", "10"}, "variant backend-dev: option layer-budget=10: the image needs at least 12 layers (4 of its base and fixed ones"},
		{[]string{"toolchain-mode", "sometimes"}, "option toolchain-mode \"sometimes\": expected auto, always or never"},
		{[]string{"compile-bytecode", "yes please"}, "option compile-bytecode=\"yes please\": expected true or false"},
		{[]string{"annotations", "maybe"}, "option annotations=\"maybe\": expected true or false"},
		{[]string{"source", "example.org/ktrdr"}, "option source=\"example.org/ktrdr\": expected a URL"},
		{[]string{"index-auth-secret", "a/b"}, "option index-auth-secret=\"a/b\": expected a secret id"},
		{[]string{"index-username", "ci"}, "option index-username=\"ci\": needs index-auth-secret"},
		{[]string{"index-url", "http://ci:hunter2@127.0.0.1:3142/simple"}, "option index-url: the URL carries credentials"},
	} {
		t.Run(tc.kv[0], func(t *testing.T) {
			o := variants.DefaultOptions()
			err := o.Set(tc.kv[0], tc.kv[1])
			if err == nil {
				_, err = variants.Graphs(context.Background(), in, o, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	o := variants.DefaultOptions()
	for _, kv := range [][2]string{{"colour", "blue"}, {"port.Worker TPU", "1"}, {"uid", "abc"}} {
		if err := o.Set(kv[0], kv[1]); err == nil {
			t.Errorf("Set(%s) accepted", kv[0])
		}
	}
	// A variant name is checked against the spec: KTRDR's has no
	// worker-tpu.
	if err := o.Set("port.worker-tpu", "1"); err != nil {
		t.Fatal(err)
	}
	_, err = variants.Graphs(context.Background(), in, o, nil)
	if err == nil || !strings.Contains(err.Error(), `option port.worker-tpu: unknown variant "worker-tpu": expected one of backend-dev, backend-prod, worker-cpu, worker-gpu`) {
		t.Errorf("port.worker-tpu: got %v", err)
	}
}

func TestMissingContextDirectory(t *testing.T) {
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	exists := in.Exists
	in.Exists = func(rel string) (bool, error) {
		if rel == "mcp" {
			return false, nil
		}
		return exists(rel)
	}
	_, err = variants.Graphs(context.Background(), in, variants.DefaultOptions(), []string{"backend-prod"})
	if err == nil || !strings.Contains(err.Error(), `variants/ktrdr.toml (the default spec):46: [tool.ktrdr-images] image "backend-prod", key copy: copies mcp, which the build context`) {
		t.Fatalf("got %v", err)
	}
	// The real .dockerignore excludes tests/: a variant copying it must be
	// told it is not in the context.
	ok, err := exists("tests")
	if err != nil || ok {
		t.Errorf("tests/ is excluded by .dockerignore but Exists says %v (%v)", ok, err)
	}
}

// The uv installer on the example's lock (made against
// http://127.0.0.1:3141/simple): uv --version is checked against
// uv-version before any install step; the layers are uv sync --frozen
// (the lock's URLs) and the project uv pip install --no-deps from the
// lock's index; with index-url naming a mirror, no uv sync at all but the
// pins by hash from the mirror.
// uv installs every layer's pins with --no-deps from the lock's index (or
// the mirror index-url names), with --require-hashes when the lock has the
// hashes; the CPU torch from the CPU index; after the uv version check.
func TestUVInstallerIndexes(t *testing.T) {
	lockIndex := "http://127.0.0.1:3141/simple"
	for _, c := range []struct {
		name string
		kv   []string
		want string
	}{
		{"lock's index", nil, lockIndex},
		{"index-url = the lock's index", []string{"index-url", lockIndex + "/"}, lockIndex + "/"},
		{"mirror", []string{"index-url", "https://mirror.example.com/simple"}, "https://mirror.example.com/simple"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := buildAll(t, []string{"worker-cpu"}, c.kv...).graphs["worker-cpu"]
			check := g.one("[builder] installer: check uv --version is " + variants.DefaultUVVersion)
			var installs int
			for d, e := range g.execs() {
				line := cmdline(e)
				if strings.Contains(line, "uv sync") {
					t.Errorf("%q runs uv sync", g.names[d])
				}
				if !strings.Contains(line, "uv pip install") {
					continue
				}
				installs++
				if !g.ancestors(d)[check] {
					t.Errorf("%q runs without the uv version check before it", g.names[d])
				}
				want := c.want
				if strings.Contains(g.names[d], "torch==2.6.0+cpu") {
					want = "https://download.pytorch.org/whl/cpu"
				} else if strings.Contains(line, "-r /tmp/reqs/") && !strings.Contains(line, "--require-hashes") {
					t.Errorf("%q: a layer of hashed pins installs without --require-hashes: %s", g.names[d], line)
				}
				if !strings.Contains(line, "--no-deps") || !strings.Contains(line, "--index-url "+want+" ") {
					t.Errorf("%q: want --no-deps --index-url %s: %s", g.names[d], want, line)
				}
			}
			// worker-cpu's package layers and the project: every layer but the
			// user, the runtime packages and the venv.
			if n := len(g.find("[layer] ")) - 3; installs != n {
				t.Errorf("%d uv pip installs for %d package layers and the project", installs, n)
			}
			if !strings.Contains(g.mkfiles(), "fastapi==0.115.11 --hash=sha256:") {
				t.Errorf("the requirements carry no hashes:\n%s", g.mkfiles())
			}
		})
	}
}

// For a daemon without the diff and merge ops (Docker engines before 23.0)
// every image is assembled by plain copies: no diff or merge op anywhere,
// the app dir copied once, owned by the app user. With a network mode
// (a client's --network host) every step runs on it.
func TestPlainAndNetwork(t *testing.T) {
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	o := variants.DefaultOptions()
	o.Plain = true
	o.Network = pb.NetMode_HOST
	imgs, err := variants.Graphs(context.Background(), in, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		g := decode(t, img.State, img)
		if img.Shared {
			t.Errorf("%s: plain image claims shared layers", img.Variant.Name)
		}
		for _, d := range g.order {
			switch g.ops[d].Op.(type) {
			case *pb.Op_Diff, *pb.Op_Merge:
				t.Errorf("%s: %q is a diff or merge op", img.Variant.Name, g.names[d])
			}
		}
		copyOp := g.one("[runtime] copy /app from the builder")
		if !g.ancestors(g.root)[copyOp] {
			t.Errorf("%s: the image is not built on the copy of /app", img.Variant.Name)
		}
		for d, e := range g.execs() {
			if e.Network != pb.NetMode_HOST {
				t.Errorf("%s: %q runs on network %v, want host", img.Variant.Name, g.names[d], e.Network)
			}
		}
	}
}

// TestIndexAuthSteps: with index-auth-secret every install step mounts the
// secret and reads NETRC, and nothing else does; without it no step has a
// secret. The credentials never enter the graph, so the same option gives
// the same vertices whatever the secret holds.
func TestIndexAuthSteps(t *testing.T) {
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	count := func(o variants.Options) (installs, withSecret int, netrc []string) {
		images, err := variants.Graphs(context.Background(), in, o, []string{"worker-cpu"})
		if err != nil {
			t.Fatal(err)
		}
		def, err := images[0].State.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, dt := range def.Def {
			var op pb.Op
			if err := op.UnmarshalVT(dt); err != nil {
				t.Fatal(err)
			}
			ex := op.GetExec()
			if ex == nil {
				continue
			}
			cmd := strings.Join(ex.Meta.Args, " ")
			install := strings.Contains(cmd, "pip install")
			if install {
				installs++
			}
			for _, m := range ex.Mounts {
				if m.MountType == pb.MountType_SECRET {
					if !install {
						t.Errorf("a step that installs nothing mounts the secret: %s", cmd)
					}
					if m.SecretOpt.ID != "idx" || m.Dest != "/run/secrets/ktrdr-index-auth" {
						t.Errorf("secret mount %+v", m)
					}
					withSecret++
				}
			}
			for _, e := range ex.Meta.Env {
				if strings.HasPrefix(e, "NETRC=") && install {
					netrc = append(netrc, e)
					if strings.Contains(e, "/tmp/.netrc") != strings.Contains(cmd, "printf 'machine %s login %s password %s\\n' 127.0.0.1 ci") {
						t.Errorf("NETRC %s for a step whose command is %s", e, cmd)
					}
				}
			}
		}
		return
	}
	o := variants.DefaultOptions()
	o.IndexURL = "http://127.0.0.1:3142/simple"
	if n, s, _ := count(o); n == 0 || s != 0 {
		t.Fatalf("without index-auth-secret: %d install steps, %d with a secret", n, s)
	}
	for _, user := range []string{"", "ci"} {
		a := o
		a.IndexAuthSecret, a.IndexUsername = "idx", user
		n, s, netrc := count(a)
		if s != n || len(netrc) != n {
			t.Errorf("index-username=%q: %d install steps, %d with the secret, %d with NETRC", user, n, s, len(netrc))
		}
	}
}

// TestPastedSpecIsDefault: KTRDR's spec read as a project's own table (the
// file pasted into a pyproject.toml) gives the embedded default's graphs
// and image configs, byte for byte, for both installers: the default is
// only that table. (Against the Go literal it replaced, commit 5c81b4a,
// the four images' manifest digests were compared on the offline world:
// README, "The spec".)
func TestPastedSpecIsDefault(t *testing.T) {
	data, err := os.ReadFile("ktrdr.toml")
	if err != nil {
		t.Fatal(err)
	}
	pasted, err := variants.ParseSpec("pyproject.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if pasted.Default {
		t.Fatal("a parsed spec is marked as the default")
	}
	for _, inst := range installers {
		kv := []string{"installer", inst, "source-date-epoch", "1700000000"}
		def := buildAll(t, nil, kv...)
		own := buildEdited(t, nil, func(in *variants.Inputs) { in.Spec = pasted }, kv...)
		for name, g := range def.graphs {
			if !bytes.Equal(g.raw, own.graphs[name].raw) {
				t.Errorf("%s, %s: the pasted spec's graph differs from the default's", inst, name)
			}
			a, _ := json.Marshal(def.images[name].Config)
			b, _ := json.Marshal(own.images[name].Config)
			if !bytes.Equal(a, b) {
				t.Errorf("%s, %s: the pasted spec's image config differs:\n%s\n%s", inst, name, a, b)
			}
		}
		if len(own.graphs) != 4 {
			t.Errorf("%s: %d images from the pasted spec", inst, len(own.graphs))
		}
	}
}
