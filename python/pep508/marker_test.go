package pep508

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// testEnvs returns the environments the marker table is evaluated against:
// linux/amd64 with Python 3.13, linux/arm64 with Python 3.12.7, and
// linux/amd64 with Python 3.13.5 and two extras active.
func testEnvs(t testing.TB) [3]Environment {
	t.Helper()
	amd, err := EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: "amd64"}, "3.13")
	if err != nil {
		t.Fatal(err)
	}
	arm, err := EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "3.12.7")
	if err != nil {
		t.Fatal(err)
	}
	extras, err := EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: "amd64"}, "3.13.5")
	if err != nil {
		t.Fatal(err)
	}
	extras = extras.WithExtras("extra-5-ktrdr-cpu", "Dev_Tools")
	return [3]Environment{amd, arm, extras}
}

func TestMarkerEvaluate(t *testing.T) {
	envs := testEnvs(t)
	tests := []struct {
		marker string
		want   [3]bool // amd64 py3.13, arm64 py3.12.7, amd64 py3.13.5 + extras
	}{
		{"", [3]bool{true, true, true}},
		// Plain string comparisons.
		{"sys_platform == 'linux'", [3]bool{true, true, true}},
		{`sys_platform == "darwin"`, [3]bool{false, false, false}},
		{"platform_machine == 'x86_64'", [3]bool{true, false, true}},
		{"platform_machine == 'aarch64'", [3]bool{false, true, false}},
		{"platform_machine != 'aarch64'", [3]bool{true, false, true}},
		{"os_name == 'posix' and platform_system == 'Linux'", [3]bool{true, true, true}},
		{"implementation_name == 'cpython'", [3]bool{true, true, true}},
		{"platform_python_implementation == 'CPython'", [3]bool{true, true, true}},
		{"platform_python_implementation == 'PyPy'", [3]bool{false, false, false}},
		{"platform_release == ''", [3]bool{true, true, true}},
		{"platform_version == ''", [3]bool{true, true, true}},
		// Deprecated spellings.
		{"os.name == 'posix' and sys.platform == 'linux'", [3]bool{true, true, true}},
		{"platform.machine == 'aarch64'", [3]bool{false, true, false}},
		{"python_implementation == 'CPython' and platform.python_implementation == 'CPython'", [3]bool{true, true, true}},
		{"platform.version == ''", [3]bool{true, true, true}},
		// uv.lock markers.
		{"python_full_version >= '3.13'", [3]bool{true, false, true}},
		{"python_full_version < '3.13'", [3]bool{false, true, false}},
		{"python_full_version == '3.13'", [3]bool{true, false, false}},
		{"python_full_version == '3.13.*'", [3]bool{true, false, true}},
		{"python_full_version >= '3.12.7' and python_full_version < '3.13.5'", [3]bool{true, true, false}},
		{"platform_machine == 'x86_64' and sys_platform == 'linux'", [3]bool{true, false, true}},
		{"sys_platform != 'darwin' or (platform_machine != 'aarch64' and platform_machine != 'arm64')", [3]bool{true, true, true}},
		{"sys_platform == 'darwin' or (platform_machine != 'aarch64' and platform_machine != 'arm64')", [3]bool{true, false, true}},
		{"python_full_version < '3.13' and implementation_name == 'cpython'", [3]bool{false, true, false}},
		{"extra == 'extra-5-ktrdr-cpu' or extra != 'extra-5-ktrdr-cu124'", [3]bool{true, true, true}},
		{"extra == 'extra-5-ktrdr-cpu' and extra != 'extra-5-ktrdr-cu124'", [3]bool{false, false, true}},
		{"extra == 'extra-5-ktrdr-cu124'", [3]bool{false, false, false}},
		// python_version compares as a version, not as a string.
		{"python_version >= '3.9'", [3]bool{true, true, true}},
		{"python_version > '3.12'", [3]bool{true, false, true}},
		{"python_version == '3.13'", [3]bool{true, false, true}},
		{"python_version < '3.13' or python_version >= '3.14'", [3]bool{false, true, false}},
		{"python_version ~= '3.12'", [3]bool{true, true, true}},
		{"python_full_version ~= '3.12.5'", [3]bool{false, true, false}},
		{"python_full_version === '3.13.5'", [3]bool{false, false, true}},
		{"implementation_version >= '3.13.1'", [3]bool{false, false, true}},
		{"python_full_version != '3.13.0'", [3]bool{false, true, true}},
		{"python_full_version > '3.13'", [3]bool{false, false, true}},
		// Reversed operands: the string on the left is the candidate
		// version, the variable on the right the specifier.
		{"'3.13' <= python_version", [3]bool{true, false, true}},
		{"'3.13' > python_full_version", [3]bool{false, true, false}},
		{"'linux' == sys_platform", [3]bool{true, true, true}},
		{"'x86_64' != platform_machine", [3]bool{false, true, false}},
		// in / not in are substring tests.
		{"platform_machine in 'x86_64 AMD64'", [3]bool{true, false, true}},
		{"platform_machine not in 'x86_64 AMD64'", [3]bool{false, true, false}},
		{"'arch' in platform_machine", [3]bool{false, true, false}},
		{"'86' not in platform_machine", [3]bool{false, true, false}},
		{"python_version in '3.12 3.13'", [3]bool{true, true, true}},
		{"'linux' not\tin sys_platform", [3]bool{false, false, false}},
		// String fallback when a side is not a version: Python string
		// ordering.
		{"platform_machine > 'arm'", [3]bool{true, false, true}},
		{"platform_machine < 'b'", [3]bool{false, true, false}},
		{"platform_machine >= 'aarch64'", [3]bool{true, true, true}},
		{"sys_platform <= 'linux'", [3]bool{true, true, true}},
		{"platform_release >= '5.0'", [3]bool{false, false, false}},
		{"platform_release < '5.0'", [3]bool{true, true, true}},
		{"platform_machine ~= 'x86_64'", [3]bool{false, false, false}},
		{"platform_machine === 'X86_64'", [3]bool{true, false, true}},
		{"python_version < '3.13.*'", [3]bool{true, true, true}}, // not a valid specifier: string "3.13" < "3.13.*"
		{"python_version == '=3.13'", [3]bool{false, false, false}},
		// extra: normalized, == is membership, != its negation.
		{"extra == 'dev-tools'", [3]bool{false, false, true}},
		{"extra == 'DEV.tools'", [3]bool{false, false, true}},
		{"'dev_tools' == extra", [3]bool{false, false, true}},
		{"extra != 'dev-tools'", [3]bool{true, true, false}},
		{"extra == 'ml'", [3]bool{false, false, false}},
		{"extra != 'ml'", [3]bool{true, true, true}},
		{"extra == 'cpu' and platform_machine == 'x86_64'", [3]bool{false, false, false}},
		{"extra in 'extra-5-ktrdr-cpu extra-5-ktrdr-cu124'", [3]bool{true, true, true}}, // "" in … with no extras, as in packaging
		{"'ktrdr' in extra", [3]bool{false, false, true}},
		{"'ktrdr' not in extra", [3]bool{true, true, true}},
		// Precedence: and binds tighter than or.
		{"sys_platform == 'darwin' and platform_machine == 'x86_64' or python_version == '3.12'", [3]bool{false, true, false}},
		{"sys_platform == 'darwin' and (platform_machine == 'x86_64' or python_version == '3.12')", [3]bool{false, false, false}},
		{"python_version == '3.12' or sys_platform == 'linux' and platform_machine == 'aarch64'", [3]bool{false, true, false}},
		{"(python_version == '3.12' or sys_platform == 'linux') and platform_machine == 'aarch64'", [3]bool{false, true, false}},
		{"((((platform_machine == 'x86_64'))))", [3]bool{true, false, true}},
		{"(platform_machine == 'x86_64' or platform_machine == 'aarch64') and (python_version < '3.13' or extra == 'dev-tools')", [3]bool{false, true, true}},
		{"python_version>='3'and(sys_platform=='linux'or sys_platform=='win32')", [3]bool{true, true, true}},
	}
	for _, tt := range tests {
		m, err := ParseMarker(tt.marker)
		if err != nil {
			t.Errorf("ParseMarker(%q): %v", tt.marker, err)
			continue
		}
		r, err := ParseMarker(m.String())
		if err != nil {
			t.Errorf("ParseMarker(%q).String() = %q does not parse: %v", tt.marker, m.String(), err)
			continue
		}
		for i, env := range envs {
			if got := m.Evaluate(env); got != tt.want[i] {
				t.Errorf("ParseMarker(%q).Evaluate(env %d) = %v, want %v", tt.marker, i, got, tt.want[i])
			}
			if got := r.Evaluate(env); got != tt.want[i] {
				t.Errorf("re-parsed %q.Evaluate(env %d) = %v, want %v", m.String(), i, got, tt.want[i])
			}
		}
	}
}

func TestMarkerString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  ", ""},
		{`python_full_version>="3.13"`, "python_full_version >= '3.13'"},
		{"os.name == 'posix'", "os_name == 'posix'"},
		{"python_implementation=='CPython'", "platform_python_implementation == 'CPython'"},
		{`'3.13'<=python_version`, "'3.13' <= python_version"},
		{`sys_platform == "it's"`, `sys_platform == "it's"`},
		{"(sys_platform == 'linux')", "sys_platform == 'linux'"},
		{"sys_platform == 'linux' and (platform_machine == 'x86_64' or (platform_machine == 'aarch64'))",
			"sys_platform == 'linux' and (platform_machine == 'x86_64' or platform_machine == 'aarch64')"},
		{"(os_name == 'a' or os_name == 'b') or os_name == 'c'", "os_name == 'a' or os_name == 'b' or os_name == 'c'"},
		{"os_name == 'a' and (os_name == 'b' and os_name == 'c')", "os_name == 'a' and os_name == 'b' and os_name == 'c'"},
		{"os_name == 'a' or os_name == 'b' and os_name == 'c'", "os_name == 'a' or os_name == 'b' and os_name == 'c'"},
		{"'x' not\t in extra", "'x' not in extra"},
	}
	for _, tt := range tests {
		m, err := ParseMarker(tt.in)
		if err != nil {
			t.Errorf("ParseMarker(%q): %v", tt.in, err)
			continue
		}
		if got := m.String(); got != tt.want {
			t.Errorf("ParseMarker(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		if m.IsEmpty() != (tt.want == "") {
			t.Errorf("ParseMarker(%q).IsEmpty() = %v", tt.in, m.IsEmpty())
		}
	}
}

func TestMarkerParseErrors(t *testing.T) {
	tests := []struct {
		in       string
		expected string // a fragment of the message
		offset   int
	}{
		{"os_name ==", "a marker variable or a quoted string", 10},
		{"os_name == 'posix", "a closing ' for the string that starts at character offset 11", 17},
		{`os_name == "posix'`, `a closing " for the string`, 18},
		{"os_name = 'posix'", "a comparison operator", 8},
		{"os_name <> 'posix'", "a marker variable or a quoted string", 9},
		{"os_name 'posix'", "a comparison operator", 8},
		{"foo == 'bar'", `"foo" is not a marker variable`, 0},
		{"os_name == bar", `"bar" is not a marker variable`, 11},
		{"platform.release == '1'", `"platform.release" is not a marker variable`, 0},
		{"OS_NAME == 'posix'", `"OS_NAME" is not a marker variable`, 0},
		{"'a' == 'b'", "a marker variable on one side", 7},
		{"os_name == sys_platform", "a quoted string on one side", 11},
		{"(os_name == 'posix'", `"and", "or" or ")"`, 19},
		{"os_name == 'posix')", `"and", "or" or the end of the marker`, 18},
		{"os_name == 'posix' and", "a marker variable, a quoted string or \"(\"", 22},
		{"os_name == 'posix' or or os_name == 'nt'", "a marker variable, a quoted string or \"(\"", 22},
		{"os_name == 'posix' && os_name == 'nt'", `"and", "or" or the end of the marker`, 19},
		{"os_name == 'posix' andos_name == 'nt'", `"and", "or" or the end of the marker`, 19},
		{"os_name == 'posix' AND os_name == 'nt'", `"and", "or" or the end of the marker`, 19},
		{"not os_name == 'posix'", `"not" is not a marker variable`, 0},
		{"'a' not'b'", "whitespace after \"not\"", 7},
		{"'a' not os_name", "\"in\" after \"not\"", 8},
		{"'a' notin os_name", "a comparison operator", 4},
		{"()", "a marker variable, a quoted string or \"(\"", 1},
		{"os_name\n== 'posix'", "a comparison operator", 7},
		{"é == 'x'", "a marker variable, a quoted string or \"(\"", 0},
		{"os_name == 'é' or", "a marker variable, a quoted string or \"(\"", 17},
	}
	for _, tt := range tests {
		m, err := ParseMarker(tt.in)
		if err == nil {
			t.Errorf("ParseMarker(%q) = %q, want error", tt.in, m)
			continue
		}
		if !errors.Is(err, ErrInvalidMarker) {
			t.Errorf("ParseMarker(%q) error %v does not wrap ErrInvalidMarker", tt.in, err)
		}
		msg := err.Error()
		want := "at character offset " + strconv.Itoa(tt.offset) + ","
		if !strings.Contains(msg, tt.expected) || !strings.Contains(msg, want) || !strings.Contains(msg, strconv.Quote(tt.in)) {
			t.Errorf("ParseMarker(%q) error = %q, want it to contain %q, %q and the quoted marker", tt.in, msg, tt.expected, want)
		}
	}
}

func TestMarkerVariables(t *testing.T) {
	m, err := ParseMarker("sys.platform == 'linux' and (platform_machine == 'x86_64' or '3.13' <= python_full_version or platform_machine != 'aarch64') and extra == 'x'")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"extra", "platform_machine", "python_full_version", "sys_platform"}
	if got := m.Variables(); !slices.Equal(got, want) {
		t.Errorf("Variables() = %v, want %v", got, want)
	}
	if got := (Marker{}).Variables(); len(got) != 0 {
		t.Errorf("empty Variables() = %v", got)
	}
}

func TestAndOr(t *testing.T) {
	envs := testEnvs(t)
	parse := func(s string) Marker {
		m, err := ParseMarker(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	amd := parse("platform_machine == 'x86_64'")
	py312 := parse("python_version == '3.12'")
	eitherOr := parse("sys_platform == 'darwin' or platform_machine == 'aarch64'")

	if m := And(Marker{}, amd); m.String() != amd.String() {
		t.Errorf("And(empty, m) = %q", m)
	}
	if m := And(amd, Marker{}); m.String() != amd.String() {
		t.Errorf("And(m, empty) = %q", m)
	}
	if m := Or(Marker{}, amd); !m.IsEmpty() {
		t.Errorf("Or(empty, m) = %q, want empty", m)
	}
	if m := Or(amd, Marker{}); !m.IsEmpty() {
		t.Errorf("Or(m, empty) = %q, want empty", m)
	}
	if m := And(Marker{}, Marker{}); !m.IsEmpty() {
		t.Errorf("And(empty, empty) = %q", m)
	}

	and := And(amd, eitherOr)
	if got, want := and.String(), "platform_machine == 'x86_64' and (sys_platform == 'darwin' or platform_machine == 'aarch64')"; got != want {
		t.Errorf("And = %q, want %q", got, want)
	}
	or := Or(And(amd, py312), eitherOr)
	if got, want := or.String(), "platform_machine == 'x86_64' and python_version == '3.12' or sys_platform == 'darwin' or platform_machine == 'aarch64'"; got != want {
		t.Errorf("Or = %q, want %q", got, want)
	}
	for i, env := range envs {
		if got, want := and.Evaluate(env), amd.Evaluate(env) && eitherOr.Evaluate(env); got != want {
			t.Errorf("And.Evaluate(env %d) = %v, want %v", i, got, want)
		}
		want := amd.Evaluate(env) && py312.Evaluate(env) || eitherOr.Evaluate(env)
		if got := or.Evaluate(env); got != want {
			t.Errorf("Or.Evaluate(env %d) = %v, want %v", i, got, want)
		}
	}
	// Building new markers does not change the operands.
	if got := eitherOr.String(); got != "sys_platform == 'darwin' or platform_machine == 'aarch64'" {
		t.Errorf("operand changed to %q", got)
	}
	_ = Or(eitherOr, amd)
	_ = And(and, amd)
	if got := and.String(); got != "platform_machine == 'x86_64' and (sys_platform == 'darwin' or platform_machine == 'aarch64')" {
		t.Errorf("And result changed to %q", got)
	}
}

func TestMarkerText(t *testing.T) {
	var m Marker
	if err := m.UnmarshalText([]byte(`python_version>"3"`)); err != nil {
		t.Fatal(err)
	}
	b, _ := m.MarshalText()
	if string(b) != "python_version > '3'" {
		t.Errorf("MarshalText = %q", b)
	}
	if err := m.UnmarshalText([]byte("python_version >")); err == nil {
		t.Error("UnmarshalText succeeded on a bad marker")
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Foo.Bar_baz", "foo-bar-baz"},
		{"foo--bar", "foo-bar"},
		{"FOO_-._bar", "foo-bar"},
		{"torch", "torch"},
		{"-x_", "-x-"},
		{"extra-5-ktrdr-cpu", "extra-5-ktrdr-cpu"},
		{"Dev_Tools", "dev-tools"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseMarker(f *testing.F) {
	for _, s := range []string{
		"python_full_version >= '3.13'",
		"platform_machine == 'x86_64' and sys_platform == 'linux'",
		"sys_platform != 'darwin' or (platform_machine != 'aarch64' and platform_machine != 'arm64')",
		"extra == 'extra-5-ktrdr-cpu' or extra != 'extra-5-ktrdr-cu124'",
		"python_full_version < '3.13' and implementation_name == 'cpython'",
		`'3.13' <= python_version and os.name == "posix"`,
		"platform_machine not in 'x86_64 AMD64'",
		"python_version ~= '3.12' or python_full_version === '3.13.0'",
		"((extra == 'a' or extra in 'b') and python_version > '3')",
		`sys_platform == "it's"`,
	} {
		f.Add(s)
	}
	envs := testEnvs(f)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMarker(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidMarker) {
				t.Fatalf("ParseMarker(%q) error does not wrap ErrInvalidMarker: %v", s, err)
			}
			return
		}
		str := m.String()
		r, err := ParseMarker(str)
		if err != nil {
			t.Fatalf("ParseMarker(%q).String() = %q does not parse: %v", s, str, err)
		}
		if r.String() != str {
			t.Fatalf("String not stable: %q -> %q -> %q", s, str, r.String())
		}
		for _, env := range []Environment{envs[0], envs[1].WithExtras("a", "dev")} {
			if m.Evaluate(env) != r.Evaluate(env) {
				t.Fatalf("%q and its String() %q evaluate differently", s, str)
			}
		}
		_ = m.Variables()
	})
}

// TestMarkerPrereleaseInterpreter checks that version comparisons in
// markers accept pre-releases, as packaging's markers.py does.
func TestMarkerPrereleaseInterpreter(t *testing.T) {
	env := Environment{PythonVersion: "3.14", PythonFullVersion: "3.14.0rc1", ImplementationVersion: "3.14.0rc1"}
	tests := []struct {
		marker string
		want   bool
	}{
		{"python_full_version >= '3.13'", true},
		{"python_full_version >= '3.14'", false},
		{"python_full_version >= '3.14.0rc1'", true},
		{"python_full_version < '3.14'", false}, // <V excludes pre-releases of V
		{"python_full_version < '3.15'", true},
		{"python_full_version == '3.14.*'", true},
		{"implementation_version ~= '3.13'", true},
		{"python_version == '3.14'", true},
	}
	for _, tt := range tests {
		m, err := ParseMarker(tt.marker)
		if err != nil {
			t.Fatalf("ParseMarker(%q): %v", tt.marker, err)
		}
		if got := m.Evaluate(env); got != tt.want {
			t.Errorf("ParseMarker(%q).Evaluate(3.14.0rc1) = %v, want %v", tt.marker, got, tt.want)
		}
	}
}
