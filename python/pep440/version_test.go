package pep440

import (
	"errors"
	"testing"
)

// normalizeCases are versions with their normalized spelling, local label
// and pre/post/dev flags.
var normalizeCases = []struct {
	in, want, local string
	pre, post, dev  bool
}{
	{in: "1.0", want: "1.0"},
	{in: "1.0.0", want: "1.0.0"},
	{in: " v1.2.3 ", want: "1.2.3"},
	{in: "V1.2", want: "1.2"},
	{in: "01.002.0003", want: "1.2.3"},
	{in: "0!1.0", want: "1.0"},
	{in: "1!2.0", want: "1!2.0"},
	{in: "1.0a1", want: "1.0a1", pre: true},
	{in: "1.0alpha1", want: "1.0a1", pre: true},
	{in: "1.0-ALPHA.1", want: "1.0a1", pre: true},
	{in: "1.0a", want: "1.0a0", pre: true},
	{in: "1.0beta2", want: "1.0b2", pre: true},
	{in: "1.0c1", want: "1.0rc1", pre: true},
	{in: "1.0pre1", want: "1.0rc1", pre: true},
	{in: "1.0preview1", want: "1.0rc1", pre: true},
	{in: "1.0.RC.1", want: "1.0rc1", pre: true},
	{in: "1.0-1", want: "1.0.post1", post: true},
	{in: "1.0post", want: "1.0.post0", post: true},
	{in: "1.0.rev2", want: "1.0.post2", post: true},
	{in: "1.0-r3", want: "1.0.post3", post: true},
	{in: "1.0_post_4", want: "1.0.post4", post: true},
	{in: "1.0.post-", want: "1.0.post0", post: true}, // accepted by packaging too
	{in: "1.0dev", want: "1.0.dev0", pre: true, dev: true},
	{in: "1.0-dev-5", want: "1.0.dev5", pre: true, dev: true},
	{in: "1.0a1.post2.dev3", want: "1.0a1.post2.dev3", pre: true, post: true, dev: true},
	{in: "1.0.post1.dev0", want: "1.0.post1.dev0", pre: true, post: true, dev: true},
	{in: "2.5.1+cu124", want: "2.5.1+cu124", local: "cu124"},
	{in: "2.5.1+CPU", want: "2.5.1+cpu", local: "cpu"},
	{in: "1.0+ubuntu-1_2.03", want: "1.0+ubuntu.1.2.3", local: "ubuntu.1.2.3"},
	{in: "1.0+001", want: "1.0+1", local: "1"},
	{in: "\v1.0\f", want: "1.0"}, // PEP 440 names \v and \f among the whitespace to ignore
	{in: "20240101.123456789012345678901234567890", want: "20240101.123456789012345678901234567890"},
}

func TestParseNormalizes(t *testing.T) {
	for _, tt := range normalizeCases {
		v, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := v.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		if got := v.Local(); got != tt.local {
			t.Errorf("Parse(%q).Local() = %q, want %q", tt.in, got, tt.local)
		}
		if v.IsPrerelease() != tt.pre || v.IsPostRelease() != tt.post || v.IsDevRelease() != tt.dev {
			t.Errorf("Parse(%q): pre/post/dev = %v/%v/%v, want %v/%v/%v", tt.in,
				v.IsPrerelease(), v.IsPostRelease(), v.IsDevRelease(), tt.pre, tt.post, tt.dev)
		}
		if p := v.Public(); p.Local() != "" || p.String() != tt.want[:len(tt.want)-len(plusLocal(tt.local))] {
			t.Errorf("Parse(%q).Public() = %q", tt.in, p)
		}
	}
}

func plusLocal(l string) string {
	if l == "" {
		return ""
	}
	return "+" + l
}

// invalidVersions are strings Parse must reject.
var invalidVersions = []string{
	"", " ", "v", "1.", ".1", "1..0", "1.0+", "1.0+a..b", "1.0+_a", "a1.0",
	"1.0-", "1.0.post-x", "1.0 a1", "1!", "!1.0", "1.0.*", "1.0+ab cd",
	"1.0ǩ", "1.0\u212a", "1.0+\u017f", "1,0", "1.0a1b1", "==1.0",
}

func TestParseErrors(t *testing.T) {
	for _, in := range invalidVersions {
		v, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error", in, v)
			continue
		}
		if !errors.Is(err, ErrInvalidVersion) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalidVersion", in, err)
		}
	}
}

// orderedVersions is in strictly increasing PEP 440 order (taken from
// packaging's test suite plus epochs, locals and large numbers).
var orderedVersions = []string{
	"0.9",
	"1.0.dev456",
	"1.0a1",
	"1.0a2.dev456",
	"1.0a12.dev456",
	"1.0a12",
	"1.0b1.dev456",
	"1.0b2",
	"1.0b2.post345.dev456",
	"1.0b2.post345",
	"1.0b2-346",
	"1.0c1.dev456",
	"1.0c1",
	"1.0rc2",
	"1.0c3",
	"1.0",
	"1.0+abc",
	"1.0+abc.5",
	"1.0+5",
	"1.0.post456.dev34",
	"1.0.post456",
	"1.0.1",
	"1.1.dev1",
	"1.2+123abc",
	"1.2+123abc456",
	"1.2+abc",
	"1.2+abc123",
	"1.2+abc123def",
	"1.2+1234.abc",
	"1.2+123456",
	"1.2.r32+123456",
	"1.2.rev33+123456",
	"3.13.0",
	"3.13.5",
	"99999999999999999999999.0",
	"1!0.1",
	"1!1.0b2.post345+local",
	"2!0.0.1",
}

func TestCompareOrderingPairwise(t *testing.T) {
	vs := make([]Version, len(orderedVersions))
	for i, s := range orderedVersions {
		v, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", orderedVersions[i], orderedVersions[j], got, want)
			}
		}
	}
}

// equalSpellings are pairs of spellings of one version.
var equalSpellings = [][2]string{
	{"1.0", "1.0.0"},
	{"1", "1.0.0.0"},
	{"1.0", "0!1.0"},
	{"1.0a1", "1.0alpha1"},
	{"1.0rc1", "1.0c1"},
	{"1.0.post0", "1.0-0"},
	{"1.0+local.1", "1.0+LOCAL-01"},
	{"3.13", "3.13.0"},
	{"v2.0", "2.0"},
}

func TestCompareEqualSpellings(t *testing.T) {
	for _, p := range equalSpellings {
		a, errA := Parse(p[0])
		b, errB := Parse(p[1])
		if errA != nil || errB != nil {
			t.Fatalf("Parse: %v %v", errA, errB)
		}
		if a.Compare(b) != 0 || b.Compare(a) != 0 || !a.Equal(b) {
			t.Errorf("%q and %q should compare equal", p[0], p[1])
		}
	}
	// Trailing zeros are ignored, but local labels are not.
	a, _ := Parse("1.0+cpu")
	b, _ := Parse("1.0")
	if a.Compare(b) != 1 {
		t.Errorf("1.0+cpu should sort after 1.0")
	}
}

func TestZeroVersion(t *testing.T) {
	var z Version
	zero, _ := Parse("0")
	if z.String() != "0" || z.Compare(zero) != 0 || z.IsPrerelease() {
		t.Errorf("zero Version = %q, want 0", z)
	}
	if got := z.Release(); len(got) != 1 || got[0] != "0" {
		t.Errorf("zero Version Release() = %v", got)
	}
}

func TestBaseVersionAndRelease(t *testing.T) {
	v, err := Parse("2!3.13.5rc1.post2.dev3+abc")
	if err != nil {
		t.Fatal(err)
	}
	if got := v.BaseVersion().String(); got != "2!3.13.5" {
		t.Errorf("BaseVersion() = %q", got)
	}
	r := v.Release()
	if len(r) != 3 || r[0] != "3" || r[1] != "13" || r[2] != "5" {
		t.Errorf("Release() = %v", r)
	}
	r[0] = "9"
	if v.String() != "2!3.13.5rc1.post2.dev3+abc" {
		t.Errorf("Release() result aliases the version")
	}
}

func TestVersionText(t *testing.T) {
	var v Version
	if err := v.UnmarshalText([]byte("1.0-ALPHA")); err != nil {
		t.Fatal(err)
	}
	b, _ := v.MarshalText()
	if string(b) != "1.0a0" {
		t.Errorf("MarshalText = %q", b)
	}
	if err := v.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope) succeeded")
	}
}

// versionSeeds are FuzzParseVersion's seeds besides orderedVersions, and
// fuzzRefs the versions it compares every input with.
var (
	versionSeeds = []string{"v1.0-ALPHA.1", "1.0+ubuntu-1", "1!2.0rc1.post2.dev3+x.1", "1.0-1", " 3.13 "}
	fuzzRefs     = []string{"0", "1.0", "1.0a1", "1.0.post1", "1.0+x"}
)

func FuzzParseVersion(f *testing.F) {
	for _, s := range orderedVersions {
		f.Add(s)
	}
	for _, s := range versionSeeds {
		f.Add(s)
	}
	refs := []Version{}
	for _, s := range fuzzRefs {
		v, _ := Parse(s)
		refs = append(refs, v)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidVersion) {
				t.Fatalf("Parse(%q) error does not wrap ErrInvalidVersion: %v", s, err)
			}
			return
		}
		n := v.String()
		w, err := Parse(n)
		if err != nil {
			t.Fatalf("Parse(%q) ok but normalized %q does not parse: %v", s, n, err)
		}
		if w.String() != n {
			t.Fatalf("normalization not idempotent: %q -> %q -> %q", s, n, w.String())
		}
		if v.Compare(w) != 0 || v.Compare(v) != 0 {
			t.Fatalf("%q does not compare equal to its normalized form %q", s, n)
		}
		if v.Public().Compare(v) > 0 {
			t.Fatalf("Public(%q) sorts after the version", s)
		}
		for _, r := range refs {
			if v.Compare(r) != -r.Compare(v) {
				t.Fatalf("Compare not antisymmetric for %q and %q", s, r)
			}
		}
	})
}
