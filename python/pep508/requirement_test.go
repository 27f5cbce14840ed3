package pep508

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/python/pep440"
)

func TestParseRequirement(t *testing.T) {
	tests := []struct {
		in         string
		name, norm string
		extras     []string
		spec       string // Specifiers.String()
		url        string
		marker     string // Marker.String()
		str        string // Requirement.String()
	}{
		{in: "torch", name: "torch", norm: "torch", str: "torch"},
		{in: "  torch  ", name: "torch", norm: "torch", str: "torch"},
		{in: "sqlalchemy[asyncio]>=2.0.0", name: "sqlalchemy", norm: "sqlalchemy", extras: []string{"asyncio"}, spec: ">=2.0.0", str: "sqlalchemy[asyncio]>=2.0.0"},
		{in: "torch>=2.7.1; extra == 'ml'", name: "torch", norm: "torch", spec: ">=2.7.1", marker: "extra == 'ml'", str: "torch>=2.7.1; extra == 'ml'"},
		{in: "mcp[cli] >= 1.2", name: "mcp", norm: "mcp", extras: []string{"cli"}, spec: ">=1.2", str: "mcp[cli]>=1.2"},
		{in: "numpy (>=1.26)", name: "numpy", norm: "numpy", spec: ">=1.26", str: "numpy>=1.26"},
		{in: "numpy(>=1.26,<2)", name: "numpy", norm: "numpy", spec: ">=1.26, <2", str: "numpy>=1.26, <2"},
		{in: "numpy ( >= 1.26 , < 2 ) ; python_version<'3.13'", name: "numpy", norm: "numpy", spec: ">=1.26, <2", marker: "python_version < '3.13'", str: "numpy>=1.26, <2; python_version < '3.13'"},
		{in: "pkg @ https://x/y.whl ; python_version < '3.13'", name: "pkg", norm: "pkg", url: "https://x/y.whl", marker: "python_version < '3.13'", str: "pkg @ https://x/y.whl ; python_version < '3.13'"},
		{in: "pkg@https://x/y.whl", name: "pkg", norm: "pkg", url: "https://x/y.whl", str: "pkg @ https://x/y.whl"},
		{in: "pkg[a] @ file:///tmp/p;x.whl", name: "pkg", norm: "pkg", extras: []string{"a"}, url: "file:///tmp/p;x.whl", str: "pkg[a] @ file:///tmp/p;x.whl"},
		{in: "Foo.Bar_baz==1.0", name: "Foo.Bar_baz", norm: "foo-bar-baz", spec: "==1.0", str: "Foo.Bar_baz==1.0"},
		{in: "uvicorn[standard, Dev_Extra ]~=0.30.0", name: "uvicorn", norm: "uvicorn", extras: []string{"standard", "Dev_Extra"}, spec: "~=0.30.0", str: "uvicorn[standard,Dev_Extra]~=0.30.0"},
		{in: "pkg[]", name: "pkg", norm: "pkg", extras: []string{}, str: "pkg"},
		{in: "pkg;os_name=='posix'", name: "pkg", norm: "pkg", marker: "os_name == 'posix'", str: "pkg; os_name == 'posix'"},
		{in: "pkg ; sys_platform == 'linux' and (platform_machine == 'x86_64' or platform_machine == 'aarch64')", name: "pkg", norm: "pkg",
			marker: "sys_platform == 'linux' and (platform_machine == 'x86_64' or platform_machine == 'aarch64')",
			str:    "pkg; sys_platform == 'linux' and (platform_machine == 'x86_64' or platform_machine == 'aarch64')"},
		{in: "torch==2.7.1+cpu", name: "torch", norm: "torch", spec: "==2.7.1+cpu", str: "torch==2.7.1+cpu"},
		{in: "pkg===1.0-weird", name: "pkg", norm: "pkg", spec: "===1.0-weird", str: "pkg===1.0-weird"},
		{in: "pkg!=1.*,>=0.9;extra=='x'", name: "pkg", norm: "pkg", spec: "!=1.*, >=0.9", marker: "extra == 'x'", str: "pkg!=1.*, >=0.9; extra == 'x'"},
		{in: "A", name: "A", norm: "a", str: "A"},
	}
	for _, tt := range tests {
		r, err := ParseRequirement(tt.in)
		if err != nil {
			t.Errorf("ParseRequirement(%q): %v", tt.in, err)
			continue
		}
		if r.Name != tt.name || r.NormalizedName() != tt.norm || !slices.Equal(r.Extras, tt.extras) ||
			(r.Extras == nil) != (tt.extras == nil) || r.Specifiers.String() != tt.spec || r.URL != tt.url ||
			r.Marker.String() != tt.marker {
			t.Errorf("ParseRequirement(%q) = {Name:%q Norm:%q Extras:%#v Spec:%q URL:%q Marker:%q}, want {%q %q %#v %q %q %q}",
				tt.in, r.Name, r.NormalizedName(), r.Extras, r.Specifiers.String(), r.URL, r.Marker.String(),
				tt.name, tt.norm, tt.extras, tt.spec, tt.url, tt.marker)
		}
		if got := r.String(); got != tt.str {
			t.Errorf("ParseRequirement(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		back, err := ParseRequirement(r.String())
		if err != nil || back.String() != r.String() {
			t.Errorf("ParseRequirement(%q).String() = %q does not round-trip: %v", tt.in, r.String(), err)
		}
	}
}

func TestParseRequirementSemantics(t *testing.T) {
	envs := testEnvs(t)
	r, err := ParseRequirement("torch>=2.7.1; extra == 'ml' and platform_machine == 'x86_64'")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := pep440.Parse("2.7.1+cu124")
	if !r.Specifiers.Contains(v, false) {
		t.Errorf("%q should contain %q", r.Specifiers, v)
	}
	if r.Marker.Evaluate(envs[0]) || !r.Marker.Evaluate(envs[0].WithExtras("ML")) || r.Marker.Evaluate(envs[1].WithExtras("ml")) {
		t.Errorf("marker %q evaluated wrongly", r.Marker)
	}
}

func TestParseRequirementErrors(t *testing.T) {
	tests := []struct {
		in       string
		expected string
		offset   int
	}{
		{"", "a distribution name", 0},
		{"   ", "a distribution name", 3},
		{"-pkg", "a distribution name", 0},
		{"pkg-", `a version specifier, "[", "(", "@", ";" or the end of the requirement`, 3},
		{"pkg foo", `a version specifier, "[", "(", "@", ";" or the end of the requirement`, 4},
		{"pkg[", "an extra name", 4},
		{"pkg[a", `"," or "]" in the extras`, 5},
		{"pkg[a,]", "an extra name", 6},
		{"pkg[a b]", `"," or "]" in the extras`, 6},
		{"pkg[a]x", `";" or the end of the requirement`, 6},
		{"pkg (>=1.0", `")" to close the "(" at character offset 4`, 10},
		{"pkg ()", "a version specifier", 5},
		{"pkg >=1.0 <2.0", "bad version specifier at character offset 4", -1},
		{"pkg >=1.x", "bad version specifier at character offset 4", -1},
		{"pkg (>=1.0) >=2", `";" or the end of the requirement`, 12},
		{"pkg @", `a URL after "@"`, 5},
		{"pkg @ https://x/y.whl; python_version < '3'", `whitespace and ";" before a marker`, 23},
		{"pkg @ https://x/y.whl extra", `whitespace and ";" before a marker`, 22},
		{"pkg >=1.0;", `a marker after ";"`, 10},
		{"pkg; ", `a marker after ";"`, 5},
		{"pkg; os_name == ", "a marker variable or a quoted string", 16},
		{"pkg; os_name == 'a' garbage", `"and", "or" or the end of the marker`, 20},
		{"pkg; foo == 'a'", `"foo" is not a marker variable`, 5},
		{"pkg>=1.0,<2;", `a marker after ";"`, 12},
		{"pkg ==1.0 ; (", `a marker variable, a quoted string or "("`, 13},
	}
	for _, tt := range tests {
		r, err := ParseRequirement(tt.in)
		if err == nil {
			t.Errorf("ParseRequirement(%q) = %q, want error", tt.in, r)
			continue
		}
		if !errors.Is(err, ErrInvalidRequirement) {
			t.Errorf("ParseRequirement(%q) error %v does not wrap ErrInvalidRequirement", tt.in, err)
		}
		msg := err.Error()
		ok := strings.Contains(msg, tt.expected) && strings.Contains(msg, strconv.Quote(tt.in))
		if tt.offset >= 0 {
			ok = ok && strings.Contains(msg, "at character offset "+strconv.Itoa(tt.offset)+",")
		}
		if !ok {
			t.Errorf("ParseRequirement(%q) error = %q, want it to contain %q at offset %d", tt.in, msg, tt.expected, tt.offset)
		}
	}
	_, err := ParseRequirement("pkg >=1.x")
	if !errors.Is(err, pep440.ErrInvalidSpecifier) || !errors.Is(err, pep440.ErrInvalidVersion) {
		t.Errorf("specifier error %v does not wrap its cause", err)
	}
}

func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{
		"sqlalchemy[asyncio]>=2.0.0",
		"torch>=2.7.1; extra == 'ml'",
		"mcp[cli] >= 1.2",
		"numpy (>=1.26)",
		"pkg @ https://x/y.whl ; python_version < '3.13'",
		"Foo.Bar_baz==1.0",
		"pkg[a, b]!=1.*,>=0.9;extra=='x' or os.name == \"nt\"",
		"pkg===x",
	} {
		f.Add(s)
	}
	envs := testEnvs(f)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequirement(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequirement) {
				t.Fatalf("ParseRequirement(%q) error does not wrap ErrInvalidRequirement: %v", s, err)
			}
			return
		}
		str := r.String()
		back, err := ParseRequirement(str)
		if err != nil {
			t.Fatalf("ParseRequirement(%q).String() = %q does not parse: %v", s, str, err)
		}
		if back.String() != str || back.Name != r.Name || back.URL != r.URL || !back.Specifiers.Equal(r.Specifiers) ||
			len(back.Extras) != len(r.Extras) {
			t.Fatalf("ParseRequirement(%q) does not round-trip through %q", s, str)
		}
		for _, env := range envs {
			if back.Marker.Evaluate(env) != r.Marker.Evaluate(env) {
				t.Fatalf("ParseRequirement(%q) marker changes meaning through %q", s, str)
			}
		}
	})
}
