package uvlock

import (
	"errors"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestWheelCompatible(t *testing.T) {
	for _, c := range []struct {
		file            string
		python, machine string
		want            bool
	}{
		{"fastapi-0.115.11-py3-none-any.whl", "3.13", "x86_64", true},
		{"six-1.16.0-py2.py3-none-any.whl", "3.13", "aarch64", true},
		{"numpy-2.2.4-cp313-cp313-linux_x86_64.whl", "3.13", "x86_64", true},
		{"numpy-2.2.4-cp313-cp313-linux_x86_64.whl", "3.13", "aarch64", false},
		{"numpy-2.2.4-cp313-cp313-linux_x86_64.whl", "3.12", "x86_64", false},
		{"numpy-2.2.4-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.13", "x86_64", false},
		{"numpy-2.2.4-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "3.13", "aarch64", true},
		{"pydantic_core-2.27.2-cp38-abi3-manylinux_2_17_x86_64.whl", "3.13", "x86_64", true},
		{"cryptography-44.0.0-cp314-abi3-manylinux_2_34_x86_64.whl", "3.13", "x86_64", false},
		{"torch-2.6.0-cp313-cp313-win_amd64.whl", "3.13", "x86_64", false},
		{"torch-2.6.0-cp313-cp313-macosx_11_0_arm64.whl", "3.13", "aarch64", false},
		{"nvidia_cublas_cu12-12.4.5.8-py3-none-manylinux2014_x86_64.whl", "3.13", "x86_64", true},
		{"nvidia_cublas_cu12-12.4.5.8-py3-none-linux_x86_64.whl", "3.13", "aarch64", false},
		{"foo-1.0-1build-py3-none-any.whl", "3.13", "x86_64", true},
	} {
		tags, err := ParseWheelName(c.file)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := tags.Compatible(c.python, c.machine); got != c.want {
			t.Errorf("%s on CPython %s %s: compatible %v, want %v", c.file, c.python, c.machine, got, c.want)
		}
	}
	for _, bad := range []string{"foo-1.0.tar.gz", "foo-1.0-any.whl"} {
		if _, err := ParseWheelName(bad); err == nil {
			t.Errorf("%s parsed as a wheel name", bad)
		}
	}
}

const artifactLock = `version = 1
revision = 3
requires-python = ">=3.12"

[[package]]
name = "app"
version = "1.0"
source = { editable = "." }
dependencies = [{ name = "fast" }, { name = "native" }, { name = "built" }]

[package.metadata]
requires-dist = [{ name = "fast" }, { name = "native" }, { name = "built" }]

[[package]]
name = "fast"
version = "1.0"
source = { registry = "http://mirror/simple" }
wheels = [{ url = "http://mirror/fast-1.0-py3-none-any.whl", hash = "sha256:aa", size = 1 }]

[[package]]
name = "native"
version = "2.0"
source = { registry = "http://mirror/simple" }
wheels = [{ url = "http://mirror/native-2.0-cp313-cp313-manylinux_2_17_x86_64.whl", hash = "sha256:bb", size = 2 }]

[[package]]
name = "built"
version = "3.0"
source = { registry = "http://mirror/simple" }
sdist = { url = "http://mirror/built-3.0.tar.gz", hash = "sha256:cc", size = 3 }
`

const artifactProject = `[project]
name = "app"
version = "1.0"
requires-python = ">=3.12"
dependencies = ["fast", "native", "built"]
`

func TestCheckArtifacts(t *testing.T) {
	proj, lock := parseFixture(t, artifactProject, artifactLock)
	if got := lock.DefaultRegistry(); got != "http://mirror/simple" {
		t.Errorf("DefaultRegistry = %q", got)
	}
	for _, c := range []struct {
		platform, python, wantErr string
	}{
		{"linux/amd64", "3.13", ""},
		{"linux/arm64", "3.13", "native 2.0 has no wheel for linux/arm64 and CPython 3.13"},
		{"linux/amd64", "3.12", "native 2.0 has no wheel for linux/amd64 and CPython 3.12"},
	} {
		plat := ocispecs.Platform{OS: "linux", Architecture: strings.TrimPrefix(c.platform, "linux/")}
		env, err := pep508.EnvironmentFor(plat, c.python)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Resolve(proj, lock, Request{Env: env})
		if err != nil {
			t.Fatal(err)
		}
		build, err := lock.CheckArtifacts(res, env, c.platform)
		if c.wantErr == "" {
			if err != nil || strings.Join(build, ",") != "built" {
				t.Errorf("%s: needs build %v, err %v; want [built], nil", c.platform, build, err)
			}
			continue
		}
		var ae *ArtifactError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "native-2.0-cp313") {
			t.Errorf("%s %s: err %v, want one containing %q", c.platform, c.python, err, c.wantErr)
		}
	}
}

func parseFixture(t *testing.T, project, lockText string) (*pyproject.Project, *Lock) {
	t.Helper()
	proj, err := pyproject.Parse("pyproject.toml", []byte(project))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := Parse("uv.lock", []byte(lockText))
	if err != nil {
		t.Fatal(err)
	}
	return proj, lock
}
