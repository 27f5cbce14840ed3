package llb

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

func TestMergeConfigKeepsBase(t *testing.T) {
	var base dockerspec.DockerOCIImage
	base.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8", "PYTHON_VERSION=3.13.5"}
	base.Config.Cmd = []string{"python3"}
	base.Config.Labels = map[string]string{"maintainer": "debian"}
	epoch := time.Unix(1700000000, 0).UTC()
	got := MergeConfig(base, ImageConfig{
		User: "app", WorkingDir: "/app",
		Env:          []string{"LANG=en_US.UTF-8", "PYTHONUNBUFFERED=1"},
		PathPrepend:  []string{"/app/.venv/bin"},
		Entrypoint:   []string{"/usr/bin/tini", "--"},
		ExposedPorts: []string{"8000"},
		Labels:       map[string]string{"org.opencontainers.image.title": "x"},
	}, amd64, &epoch)
	want := []string{"PATH=/app/.venv/bin:/usr/local/bin:/usr/bin", "LANG=en_US.UTF-8", "PYTHON_VERSION=3.13.5", "PYTHONUNBUFFERED=1"}
	if !slices.Equal(got.Config.Env, want) {
		t.Errorf("env %v, want %v", got.Config.Env, want)
	}
	if got.Config.Cmd != nil {
		t.Errorf("a new entrypoint must drop the base's cmd, got %v", got.Config.Cmd)
	}
	if got.Config.Labels["maintainer"] != "debian" || got.Config.Labels["org.opencontainers.image.title"] != "x" {
		t.Errorf("labels %v", got.Config.Labels)
	}
	if _, ok := got.Config.ExposedPorts["8000/tcp"]; !ok || got.Created == nil || !got.Created.Equal(epoch) || got.Architecture != "amd64" {
		t.Errorf("config %+v", got)
	}
	if base.Config.Labels["org.opencontainers.image.title"] != "" {
		t.Error("MergeConfig modified the base's labels")
	}
	// A base with no PATH gets the default one under the prepended dirs.
	got = MergeConfig(dockerspec.DockerOCIImage{}, ImageConfig{PathPrepend: []string{"/v/bin"}}, amd64, nil)
	if !slices.Equal(got.Config.Env, []string{"PATH=/v/bin:" + DefaultPath}) || got.Created != nil {
		t.Errorf("env %v created %v", got.Config.Env, got.Created)
	}
}

type fakeResolver struct{ calls int }

func (f *fakeResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	f.calls++
	var img dockerspec.DockerOCIImage
	img.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"}
	img.Architecture = opt.ImageOpt.Platform.Architecture
	dt, _ := json.Marshal(img)
	return ref, digest.FromString("config of " + ref), dt, nil
}

func TestBaseImageResolved(t *testing.T) {
	r := &fakeResolver{}
	img, err := BaseImage(context.Background(), r, "docker.io/library/python:3.13-slim", Build{Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	if !img.Resolved || !strings.Contains(img.Ref, "@sha256:") || img.Config.Config.Env[1] != "LANG=C.UTF-8" {
		t.Errorf("image %+v", img)
	}
	env, err := img.State.Env(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := env.Get("LANG"); v != "C.UTF-8" {
		t.Errorf("the state does not carry the base's env: %v", env)
	}
	unresolved, err := BaseImage(context.Background(), nil, "docker.io/library/python:3.13-slim", Build{Platform: amd64})
	if err != nil || unresolved.Resolved {
		t.Errorf("without a resolver: %+v %v", unresolved, err)
	}
}

func TestValidation(t *testing.T) {
	good := User{Name: "ktrdr", Group: "ktrdr", UID: 999, GID: 999, Home: "/app", Shell: "/sbin/nologin"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, u := range []User{
		{Name: "Root", Group: "g", UID: 1, GID: 1, Home: "/a", Shell: "/s"},
		{Name: "u", Group: "g g", UID: 1, GID: 1, Home: "/a", Shell: "/s"},
		{Name: "u", Group: "g", UID: 0, GID: 1, Home: "/a", Shell: "/s"},
		{Name: "u", Group: "g", UID: 1, GID: 70000, Home: "/a", Shell: "/s"},
		{Name: "u", Group: "g", UID: 1, GID: 1, Home: "app", Shell: "/s"},
	} {
		if u.Validate() == nil {
			t.Errorf("%+v accepted", u)
		}
	}
	for _, p := range []string{"0", "65536", "80/tcpx", "x", ""} {
		if _, err := ParsePort(p); err == nil {
			t.Errorf("port %q accepted", p)
		}
	}
	if p, err := ParsePort("5003"); err != nil || p != "5003/tcp" {
		t.Errorf("ParsePort(5003) = %q, %v", p, err)
	}
	for _, u := range []string{"ftp://x/simple", "https:///simple", "::"} {
		if ValidateIndexURL("index-url", u) == nil {
			t.Errorf("index %q accepted", u)
		}
	}
	for _, v := range []string{"latest", "0.9", "v0.9.5"} {
		if ValidateUVVersion(v) == nil {
			t.Errorf("uv version %q accepted", v)
		}
	}
	if err := ValidatePackages("toolchain", []string{"gcc", "build-essential", "libpq-dev=15.3-1"}); err != nil {
		t.Error(err)
	}
	if ValidatePackages("toolchain", []string{"gcc; rm -rf /"}) == nil {
		t.Error("shell in a package name accepted")
	}
	if _, err := NormalizeRef("base", "python:3.13-slim"); err != nil {
		t.Error(err)
	}
	if got := ShellQuote("it's"); got != `'it'"'"'s'` {
		t.Errorf("shellQuote %s", got)
	}
}

// The apt step keeps lists and .debs in locked cache mounts and removes the
// timestamped logs in the same step.
func TestAptInstallOp(t *testing.T) {
	st := AptInstall(llb.Image("debian"), []string{"tini", "curl"}, Build{Platform: amd64, CacheNS: "ns"}, "runtime", "apt")
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dt := range def.Def {
		if strings.Contains(string(dt), "apt-get install") {
			found = true
			for _, want := range []string{"--no-install-recommends", "rm -rf /var/log/apt /var/log/dpkg.log", "ns/apt-lists/runtime/linux-amd64", "ns/apt-cache/runtime/linux-amd64"} {
				if !strings.Contains(string(dt), want) {
					t.Errorf("apt op lacks %q", want)
				}
			}
		}
	}
	if !found {
		t.Fatal("no apt op")
	}
}

// Both installers install a layer's pins with --no-deps, with
// --require-hashes only when every pin of a group has hashes, and take
// packages from another index in a group of their own.
func TestInstallRequireHashes(t *testing.T) {
	env := Env{Build: Build{Platform: amd64}, Python: "python3", AppDir: "/app", VenvDir: "/app/.venv",
		User: User{Name: "app", Group: "app", UID: 999, GID: 999, Home: "/app", Shell: "/sbin/nologin"}}
	layer := Layer{Name: "mixed", Requirements: []Requirement{
		{Name: "a", Version: "1.0", Hashes: []string{"sha256:aa"}},
		{Name: "b", Version: "2.0", Hashes: []string{"sha256:bb", "sha256:cc"}},
		{Name: "torch", Version: "2.6.0+cpu", Index: "https://download.pytorch.org/whl/cpu"},
	}}
	for _, inst := range []Installer{Pip{}, UV{Version: "0.9.17"}} {
		t.Run(inst.Name(), func(t *testing.T) {
			st := inst.Install(llb.Image("python"), layer, env)
			def, err := st.Marshal(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var all string
			for _, dt := range def.Def {
				all += string(dt)
			}
			for _, want := range []string{
				"printf '%s\\n' 'a==1.0 --hash=sha256:aa' 'b==2.0 --hash=sha256:bb --hash=sha256:cc' > /tmp/reqs/requirements-0.txt",
				"printf '%s\\n' torch==2.6.0+cpu > /tmp/reqs/requirements-1.txt",
				"--no-deps", "--require-hashes -r /tmp/reqs/requirements-0.txt",
				"--index-url https://download.pytorch.org/whl/cpu -r /tmp/reqs/requirements-1.txt",
			} {
				if !strings.Contains(all, want) {
					t.Errorf("%s layer lacks %q", inst.Name(), want)
				}
			}
			if strings.Count(all, "--require-hashes") != 1 {
				t.Errorf("--require-hashes must apply to the hashed group only")
			}
			if inst.Name() == "uv" && !strings.Contains(all, "rm -f /app/.venv/.lock") {
				t.Errorf("uv layer keeps uv's venv lock file")
			}
		})
	}
}

// A package layer's vertex depends on its pins and the builder only: the
// same pins under two layer names are one vertex, and the diff is taken
// against the empty venv.
func TestPackageLayerDigest(t *testing.T) {
	env := Env{Build: Build{Platform: amd64}, Python: "python3", AppDir: "/app", VenvDir: "/app/.venv",
		User: User{Name: "app", Group: "app", UID: 999, GID: 999, Home: "/app", Shell: "/sbin/nologin"}}
	b := NewBuilder(llb.Image("docker.io/library/python:3.13-slim"), []string{"gcc"}, UV{Version: "0.9.17"}, env)
	pins := []Requirement{{Name: "numpy", Version: "2.2.4", Hashes: []string{"sha256:aa"}}}
	digestOf := func(p Part) string {
		def, err := p.State.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return string(def.Def[len(def.Def)-1])
	}
	one := digestOf(b.Package(Layer{Name: "numpy", Requirements: pins}))
	two := digestOf(b.Package(Layer{Name: "another name", Requirements: pins}))
	if one != two {
		t.Errorf("the same pins give two vertices")
	}
	if digestOf(b.Package(Layer{Name: "numpy", Requirements: pins, Toolchain: true})) == one {
		t.Errorf("a layer on the toolchain has the vertex of one without it")
	}
	bumped := []Requirement{{Name: "numpy", Version: "2.2.5", Hashes: []string{"sha256:bb"}}}
	if digestOf(b.Package(Layer{Name: "numpy", Requirements: bumped})) == one {
		t.Errorf("another version gives the same vertex")
	}
}
