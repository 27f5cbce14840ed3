package pep508

import (
	"errors"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestEnvironmentFor(t *testing.T) {
	tests := []struct {
		platform         ocispecs.Platform
		python           string
		machine          string
		pyVersion, pyFul string
	}{
		{ocispecs.Platform{OS: "linux", Architecture: "amd64"}, "3.13", "x86_64", "3.13", "3.13.0"},
		{ocispecs.Platform{OS: "linux", Architecture: "amd64"}, "3.13.5", "x86_64", "3.13", "3.13.5"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm64"}, "3.12", "aarch64", "3.12", "3.12.0"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "3.12.11", "aarch64", "3.12", "3.12.11"},
		{ocispecs.Platform{OS: "linux", Architecture: "x86_64"}, "3.14.0", "x86_64", "3.14", "3.14.0"},
		{ocispecs.Platform{OS: "linux", Architecture: "aarch64"}, "3.10", "aarch64", "3.10", "3.10.0"},
	}
	for _, tt := range tests {
		env, err := EnvironmentFor(tt.platform, tt.python)
		if err != nil {
			t.Errorf("EnvironmentFor(%v, %q): %v", tt.platform, tt.python, err)
			continue
		}
		want := Environment{
			OSName:                       "posix",
			SysPlatform:                  "linux",
			PlatformMachine:              tt.machine,
			PlatformPythonImplementation: "CPython",
			PlatformSystem:               "Linux",
			PythonVersion:                tt.pyVersion,
			PythonFullVersion:            tt.pyFul,
			ImplementationName:           "cpython",
			ImplementationVersion:        tt.pyFul,
		}
		if env.Extras != nil {
			t.Errorf("EnvironmentFor(%v, %q).Extras = %v, want nil", tt.platform, tt.python, env.Extras)
		}
		if !envEqual(env, want) {
			t.Errorf("EnvironmentFor(%v, %q) = %+v, want %+v", tt.platform, tt.python, env, want)
		}
	}
}

func envEqual(a, b Environment) bool {
	a.Extras, b.Extras = nil, nil
	return a.OSName == b.OSName && a.SysPlatform == b.SysPlatform && a.PlatformMachine == b.PlatformMachine &&
		a.PlatformPythonImplementation == b.PlatformPythonImplementation && a.PlatformRelease == b.PlatformRelease &&
		a.PlatformSystem == b.PlatformSystem && a.PlatformVersion == b.PlatformVersion &&
		a.PythonVersion == b.PythonVersion && a.PythonFullVersion == b.PythonFullVersion &&
		a.ImplementationName == b.ImplementationName && a.ImplementationVersion == b.ImplementationVersion
}

func TestEnvironmentForRejects(t *testing.T) {
	platforms := []struct {
		p    ocispecs.Platform
		name string
	}{
		{ocispecs.Platform{OS: "windows", Architecture: "amd64"}, "windows/amd64"},
		{ocispecs.Platform{OS: "darwin", Architecture: "arm64"}, "darwin/arm64"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v7"},
		{ocispecs.Platform{OS: "linux", Architecture: "386"}, "linux/386"},
		{ocispecs.Platform{OS: "linux", Architecture: "s390x"}, "linux/s390x"},
		{ocispecs.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}, "linux/amd64/v3"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}, "linux/arm64/v9"},
		{ocispecs.Platform{}, "unknown"},
	}
	for _, tt := range platforms {
		_, err := EnvironmentFor(tt.p, "3.13")
		if err == nil {
			t.Errorf("EnvironmentFor(%v) succeeded", tt.p)
			continue
		}
		if !errors.Is(err, ErrUnsupportedPlatform) || !strings.Contains(err.Error(), `"`+tt.name+`"`) ||
			!strings.Contains(err.Error(), "expected linux/amd64 or linux/arm64") {
			t.Errorf("EnvironmentFor(%v) error = %q", tt.p, err)
		}
	}
	for _, py := range []string{"", "3", "3.", ".13", "3.13.", "3.13.5.1", "3.x", "3.13rc1", "v3.13", " 3.13", "3.013", "3.13.05", "3..13", "３.13"} {
		_, err := EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: "amd64"}, py)
		if err == nil {
			t.Errorf("EnvironmentFor(python %q) succeeded", py)
			continue
		}
		if !errors.Is(err, ErrInvalidPython) || !strings.Contains(err.Error(), `"`+py+`"`) ||
			!strings.Contains(err.Error(), "X.Y or X.Y.Z") {
			t.Errorf("EnvironmentFor(python %q) error = %q", py, err)
		}
	}
}

func TestWithExtras(t *testing.T) {
	base := Environment{PythonVersion: "3.13", Extras: []string{"a"}}
	extras := []string{"b", "c"}
	got := base.WithExtras(extras...)
	if len(got.Extras) != 2 || got.Extras[0] != "b" || got.Extras[1] != "c" || got.PythonVersion != "3.13" {
		t.Errorf("WithExtras = %+v", got)
	}
	if len(base.Extras) != 1 || base.Extras[0] != "a" {
		t.Errorf("WithExtras modified the receiver: %v", base.Extras)
	}
	extras[0] = "z"
	if got.Extras[0] != "b" {
		t.Errorf("WithExtras result aliases its argument")
	}
	if none := got.WithExtras(); len(none.Extras) != 0 {
		t.Errorf("WithExtras() = %v, want no extras", none.Extras)
	}
}

func TestParsePlatform(t *testing.T) {
	ok := []struct {
		in   string
		want ocispecs.Platform
	}{
		{"linux/amd64", ocispecs.Platform{OS: "linux", Architecture: "amd64"}},
		{"linux/arm64", ocispecs.Platform{OS: "linux", Architecture: "arm64"}},
		{"linux/arm64/v8", ocispecs.Platform{OS: "linux", Architecture: "arm64"}},
		{"Linux/AMD64", ocispecs.Platform{OS: "linux", Architecture: "amd64"}},
		{"linux/x86_64", ocispecs.Platform{OS: "linux", Architecture: "amd64"}},
		{"linux/aarch64", ocispecs.Platform{OS: "linux", Architecture: "arm64"}},
	}
	for _, tt := range ok {
		p, err := ParsePlatform(tt.in)
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", tt.in, err)
			continue
		}
		if p.OS != tt.want.OS || p.Architecture != tt.want.Architecture || p.Variant != tt.want.Variant {
			t.Errorf("ParsePlatform(%q) = %+v, want %+v", tt.in, p, tt.want)
		}
		if _, err := EnvironmentFor(p, "3.13"); err != nil {
			t.Errorf("EnvironmentFor(ParsePlatform(%q)): %v", tt.in, err)
		}
	}
	for _, in := range []string{
		"windows/amd64", "linux/arm/v7", "linux/arm", "linux/386", "darwin/arm64", "linux/amd64/v3",
		"junk", "", "amd64", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/*", "linux/ppc64le",
	} {
		_, err := ParsePlatform(in)
		if err == nil {
			t.Errorf("ParsePlatform(%q) succeeded", in)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrUnsupportedPlatform) || !strings.Contains(msg, `"`+in+`"`) ||
			!strings.Contains(msg, "expected linux/amd64 or linux/arm64") {
			t.Errorf("ParsePlatform(%q) error = %q", in, msg)
		}
	}
}
