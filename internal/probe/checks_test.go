package probe

import (
	"context"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func goodConfig() dockerspec.DockerOCIImage {
	var c dockerspec.DockerOCIImage
	c.Config.User = "ktrdr"
	c.Config.Entrypoint = []string{"/usr/bin/tini", "--"}
	c.Config.Env = []string{"PATH=/app/.venv/bin:/usr/local/bin:/usr/bin", "LANG=C.UTF-8"}
	c.Config.ExposedPorts = map[string]struct{}{"8000/tcp": {}}
	c.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "curl -fs http://localhost:8000/api/v1/health || exit 1"}}
	c.Config.Labels = map[string]string{"org.opencontainers.image.title": "ktrdr-backend"}
	c.Config.Volumes = map[string]struct{}{"/app/data": {}}
	return c
}

func spec() Spec {
	return Spec{User: "ktrdr", Port: 8000, HealthPath: "/api/v1/health",
		BaseEnv: []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"},
		Labels:  []string{"org.opencontainers.image.title"}, Volumes: []string{"/app/data"}}
}

func TestCheckConfig(t *testing.T) {
	if r := checkConfig(goodConfig(), spec()); !r.OK {
		t.Fatalf("good config refused: %s", r.Detail)
	}
	for name, tc := range map[string]struct {
		mutate func(*dockerspec.DockerOCIImage)
		want   string
	}{
		"lost PATH":     {func(c *dockerspec.DockerOCIImage) { c.Config.Env[0] = "PATH=/app/.venv/bin" }, "lost the base's /usr/local/bin"},
		"lost LANG":     {func(c *dockerspec.DockerOCIImage) { c.Config.Env = c.Config.Env[:1] }, "LANG"},
		"root":          {func(c *dockerspec.DockerOCIImage) { c.Config.User = "" }, "user is"},
		"no tini":       {func(c *dockerspec.DockerOCIImage) { c.Config.Entrypoint = nil }, "not tini"},
		"no port":       {func(c *dockerspec.DockerOCIImage) { c.Config.ExposedPorts = nil }, "not exposed"},
		"no health":     {func(c *dockerspec.DockerOCIImage) { c.Config.Healthcheck = nil }, "no healthcheck"},
		"no volume":     {func(c *dockerspec.DockerOCIImage) { c.Config.Volumes = nil }, "volume /app/data"},
		"missing label": {func(c *dockerspec.DockerOCIImage) { c.Config.Labels = nil }, "label"},
	} {
		c := goodConfig()
		tc.mutate(&c)
		r := checkConfig(c, spec())
		if r.OK || !strings.Contains(r.Detail, tc.want) {
			t.Errorf("%s: %+v, want a failure mentioning %q", name, r, tc.want)
		}
	}
}

func TestFailed(t *testing.T) {
	rs := []Result{{Name: "a", OK: true}, {Name: "b"}, {Name: "c", OK: true}}
	if f := Failed(rs); len(f) != 1 || f[0].Name != "b" {
		t.Errorf("Failed %v", f)
	}
}

func TestCompareDistributions(t *testing.T) {
	env, err := pep508.EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: "amd64"}, "3.13.5")
	if err != nil {
		t.Fatal(err)
	}
	good := []Dist{
		{Name: "FastAPI", Version: "0.115.11", Requires: []string{"starlette<0.47.0,>=0.40.0", "pydantic>=1.7.4", "email-validator>=2.0.0; extra == \"all\""}},
		{Name: "starlette", Version: "0.46.1", Requires: []string{"anyio<5,>=3.6.2"}},
		{Name: "pydantic", Version: "2.10.6"},
		{Name: "anyio", Version: "4.8.0", Requires: []string{"idna>=2.8", "trio>=0.26.1; extra == \"trio\"", "exceptiongroup>=1.0.2; python_version < \"3.11\""}},
		{Name: "idna", Version: "3.10"},
		{Name: "sqlalchemy", Version: "2.0.40", Requires: []string{"greenlet!=0.4.17; extra == \"asyncio\""}},
		{Name: "app", Version: "1.0", Requires: []string{"sqlalchemy[asyncio]>=2.0", "fastapi"}},
		{Name: "greenlet", Version: "3.1.0"},
		{Name: "torch", Version: "2.6.0+cpu"},
	}
	want := map[string]string{"fastapi": "0.115.11", "starlette": "0.46.1", "pydantic": "2.10.6", "anyio": "4.8.0", "idna": "3.10",
		"sqlalchemy": "2.0.40", "app": "1.0", "greenlet": "3.1.0", "torch": "2.6.0+cpu"}
	if p, _ := CompareDistributions(good, want, nil, env); len(p) != 0 {
		t.Fatalf("a consistent environment fails: %v", p)
	}
	// On a CUDA base the nvidia-* wheels torch requires are left out on
	// purpose: met by the base, counted, not a problem.
	cuda := append([]Dist{}, good...)
	cuda[8] = Dist{Name: "torch", Version: "2.6.0", Requires: []string{`nvidia-cublas-cu12==12.4.5.8; platform_system == "Linux"`}}
	cudaWant := map[string]string{}
	for k, v := range want {
		cudaWant[k] = v
	}
	cudaWant["torch"] = "2.6.0"
	if p, n := CompareDistributions(cuda, cudaWant, map[string]bool{"nvidia-cublas-cu12": true}, env); len(p) != 0 || n != 1 {
		t.Errorf("CUDA base: problems %v, %d met by the base; want none and 1", p, n)
	}
	if p, _ := CompareDistributions(cuda, cudaWant, nil, env); len(p) != 1 {
		t.Errorf("without the base, a missing nvidia-cublas-cu12 is not reported: %v", p)
	}
	bad := append([]Dist{}, good[:7]...) // no greenlet, no torch
	bad = append(bad, Dist{Name: "torch", Version: "2.6.0"}, Dist{Name: "black", Version: "25.1.0"}, Dist{Name: "idna", Version: "3.10", Path: "/elsewhere"})
	bad[1].Version = "0.48.0"
	problems, _ := CompareDistributions(bad, want, nil, env)
	got := strings.Join(problems, "\n")
	for _, w := range []string{
		"black 25.1.0 is installed but not pinned",
		"greenlet 3.1.0 is pinned but not installed",
		"sqlalchemy[asyncio] requires greenlet!=0.4.17; extra == \"asyncio\", which is not installed",
		"fastapi requires starlette<0.47.0,>=0.40.0, but starlette 0.48.0 is installed",
		"starlette is 0.48.0, pinned 0.46.1",
		"torch is 2.6.0, pinned 2.6.0+cpu",
		"idna is installed twice",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
}

// TestCheckUserWithoutEntrypoint: an image without an entrypoint fails the
// user probe, naming what was expected, instead of panicking.
func TestCheckUserWithoutEntrypoint(t *testing.T) {
	var cfg dockerspec.DockerOCIImage
	r := checkUser(context.Background(), nil, cfg, spec())
	if r.OK || !strings.Contains(r.Detail, "no entrypoint") || !strings.Contains(r.Detail, "tini") {
		t.Errorf("%+v, want a failure naming the missing entrypoint and tini", r)
	}
}
