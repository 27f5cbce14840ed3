package probe

import (
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
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

func TestRealFilesAndFailed(t *testing.T) {
	one := []string{"/usr/lib/x86_64-linux-gnu/libcudart.so.12.4.127"}
	two := append(one, "/app/.venv/lib/python3.13/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12")
	if len(realFiles(one)) != 1 || len(realFiles(two)) != 2 {
		t.Errorf("realFiles: %v %v", realFiles(one), realFiles(two))
	}
	rs := []Result{{Name: "a", OK: true}, {Name: "b"}, {Name: "c", OK: true}}
	if f := Failed(rs); len(f) != 1 || f[0].Name != "b" {
		t.Errorf("Failed %v", f)
	}
}
