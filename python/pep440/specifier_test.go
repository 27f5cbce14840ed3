package pep440

import (
	"errors"
	"testing"
)

// containsCases are specifier sets, versions and whether the set contains
// the version with and without pre-releases allowed.
var containsCases = []struct {
	spec, version string
	allowPre      bool
	want          bool
}{
	// == and local labels.
	{"==2.0", "2.0", false, true},
	{"==2.0", "2.0.0", false, true},
	{"==2.0.0", "2", false, true},
	{"==2.0", "2.0+deadbeef", false, true},
	{"==2.7.1", "2.7.1+cpu", false, true},
	{"==2.0", "2.1", false, false},
	{"==2.0+deadbeef", "2.0+deadbeef", false, true},
	{"==2.0+deadbeef", "2.0", false, false},
	{"==2.7.1+cpu", "2.7.1+cu124", false, false},
	{"==1.0.dev1", "1.0.dev1", false, true}, // names a pre-release
	// Wildcards.
	{"==2.*", "2.0", false, true},
	{"==2.*", "2", false, true},
	{"==2.*", "2.9.post1", false, true},
	{"==2.*", "2.5+local", false, true},
	{"==2.*", "3.0", false, false},
	{"==2.*", "2.0a1", false, false},
	{"==2.*", "2.0a1", true, true},
	{"==2.1.*", "2.1", false, true},
	{"==2.1.*", "2.1.0.9", false, true},
	{"==2.1.*", "2", false, false},
	{"==2.1.*", "2.2", false, false},
	{"==1!2.*", "1!2.3", false, true},
	{"==1!2.*", "2.3", false, false},
	{"!=2.0", "2.0", false, false},
	{"!=2.0", "2.0+local", false, false},
	{"!=2.0", "2.1", false, true},
	{"!=2.0+local", "2.0", false, true},
	{"!=2.*", "2.5", false, false},
	{"!=2.*", "3.0", false, true},
	{"==1.0.*", "1", false, true},  // the candidate is padded with zeros
	{"==01.*", "1.0", false, true}, // integers are normalized in wildcards too
	{"!=00.*", "0", false, false},
	{"==1!2.*", "3!2.0", false, false}, // the epoch must match
	{"!=1!2.*", "3!2.0", false, true},
	{"==0!2.*", "2.0", false, true},
	{"!=1.0a1", "1.1a1", false, false}, // != never opts in to pre-releases
	// Exclusive ordered comparisons.
	{"<2.0", "1.9", false, true},
	{"<2.0", "2.0", false, false},
	{"<2.0", "2.0rc1", false, false},
	{"<2.0", "2.0rc1", true, false}, // <V excludes pre-releases of V
	{"<2.0", "2.0.dev1", true, false},
	{"<2.0", "1.9rc1", false, false},
	{"<2.0", "1.9rc1", true, true},
	{"<2.0", "2.0+local", false, false},
	{"<2.0rc1", "2.0b1", false, false}, // < and > never opt in to pre-releases
	{"<2.0rc1", "2.0b1", true, true},
	{"<=2.0rc1", "2.0b1", false, true},
	{"<2.0rc1", "2.0rc1", false, false},
	{">2.0", "2.1", false, true},
	{">2.0", "2.0.1", false, true},
	{">2.0", "2.0.post1", false, false}, // >V excludes post-releases of V
	{">2.0", "2.0+local", false, false},
	{">2.0", "2.0.1+local", false, true},
	{">2.0.post1", "2.0.post2", false, true},
	{">2.0.post1", "2.0.post1", false, false},
	{">2.0", "2.0", false, false},
	// Inclusive ordered comparisons.
	{"<=2.0", "2.0", false, true},
	{"<=2.0", "2.0+local", false, true},
	{"<=2.0", "2.0.post1", false, false},
	{">=2.0", "2.0", false, true},
	{">=2.0", "2.0+local", false, true},
	{">=2.7.1", "2.7.1+cu124", false, true},
	{">=2.0", "1.9", false, false},
	{">=2.0", "2.0rc1", true, false},
	{">=2.0", "3.0a1", false, false},
	{">=2.0", "3.0a1", true, true},
	{">=2.0", "3.0.post1.dev0", false, false},
	{">=2.0a1", "3.0a1", false, true}, // names a pre-release
	{">=1.0", "1!0.1", false, true},
	// Compatible release.
	{"~=2.2", "2.2", false, true},
	{"~=2.2", "2.3", false, true},
	{"~=2.2", "2.2.post3", false, true},
	{"~=2.2", "2.1", false, false},
	{"~=2.2", "3.0", false, false},
	{"~=2.2.0", "2.2.1", false, true},
	{"~=2.2.0", "2.3", false, false},
	{"~=1.4.5a4", "1.4.5a5", false, true},
	{"~=1.4.5a4", "1.4.6", false, true},
	{"~=1.4.5a4", "1.4.5a3", false, false},
	{"~=1.4.5a4", "1.5", false, false},
	{"~=2.2.post3", "2.2.post4", false, true},
	{"~=2.2.post3", "2.3", false, true},
	{"~=2.2.post3", "2.2.post2", false, false},
	{"~=1!2.2", "1!2.5", false, true},
	{"~=1!2.2", "2.5", false, false},
	{"~=1.0.0", "1", false, true},
	{"~=0.0.00", "0", false, true},
	// Arbitrary equality.
	{"===1.0", "1.0", false, true},
	{"===1.0", "1.0.0", false, false},
	{"===1.0+CPU", "1.0+cpu", false, true},
	{"===foobar", "1.0", false, false},
	// Sets.
	{">=3.12, <3.14", "3.13.5", false, true},
	{">=3.12, <3.14", "3.12", false, true},
	{">=3.12, <3.14", "3.14.0", false, false},
	{">=3.12, <3.14", "3.11.9", false, false},
	{">=3.12,<3.14,!=3.13.1", "3.13.1", false, false},
	{" >= 3.12 ,  < 3.14 ", "3.13", false, true},
	{">=1.0,", "1.0", false, true},
	{"", "1.0", false, true},
	{"", "1.0a1", false, true},
	{">=1.0, <2.0a1", "1.5b1", false, false},
	{">=1.0a1, <2.0", "1.5b1", false, true}, // one clause names a pre-release
}

func TestSpecifiersContains(t *testing.T) {
	for _, tt := range containsCases {
		s, err := ParseSpecifiers(tt.spec)
		if err != nil {
			t.Errorf("ParseSpecifiers(%q): %v", tt.spec, err)
			continue
		}
		v, err := Parse(tt.version)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.version, err)
			continue
		}
		if got := s.Contains(v, tt.allowPre); got != tt.want {
			t.Errorf("ParseSpecifiers(%q).Contains(%q, %v) = %v, want %v", tt.spec, tt.version, tt.allowPre, got, tt.want)
		}
	}
}

// invalidSpecifiers are specifier sets ParseSpecifiers must reject.
var invalidSpecifiers = []string{
	"1.0", "=>1.0", "=1.0", ">=", ">=1.0 <2.0", ">= 1.0 2.0", ">=1.*", "<2.0.*",
	"~=1.*", "~=1", "~=1.0+local", "<1.0+local", ">=1.0+local", "==1.0a1.*",
	"==1.0+local.*", "==1.0.post1.*", "==1.0.dev1.*", "===", "===a)b", "===a;b",
	">=1.0;", "==1.0 .*", ">=1.0, foo", "!==1.0", ">>1.0", "==*",
}

func TestParseSpecifiersErrors(t *testing.T) {
	for _, in := range invalidSpecifiers {
		s, err := ParseSpecifiers(in)
		if err == nil {
			t.Errorf("ParseSpecifiers(%q) = %q, want error", in, s)
			continue
		}
		if !errors.Is(err, ErrInvalidSpecifier) {
			t.Errorf("ParseSpecifiers(%q) error %v does not wrap ErrInvalidSpecifier", in, err)
		}
	}
	// The version error is wrapped too.
	_, err := ParseSpecifiers(">=1.0.x")
	if !errors.Is(err, ErrInvalidVersion) {
		t.Errorf("ParseSpecifiers(>=1.0.x) error %v does not wrap ErrInvalidVersion", err)
	}
}

// specStringCases are specifier sets and their normalized String.
var specStringCases = []struct {
	in, str string
}{
	{"", ""},
	{">=3.12,<3.14", ">=3.12, <3.14"},
	{" >= 3.12 ,  < 3.14 ", ">=3.12, <3.14"},
	{"==1.0-ALPHA", "==1.0a0"},
	{"== v2.*", "==2.*"},
	{"~=1.4.5a4", "~=1.4.5a4"},
	{"===Foo", "===Foo"},
	{"!=1.0+CPU", "!=1.0+cpu"},
}

// specEqualCases are pairs of specifier sets and whether they are Equal.
var specEqualCases = []struct {
	a, b string
	want bool
}{
	{">=3.12,<3.14", "<3.14.0, >=3.12", true},
	{">=3.12,<3.14", ">=3.12,<3.14,>=3.12", true},
	{">=3.12", ">=3.12.0", true},
	{"==1.0", "==1", true},
	{"", "", true},
	{"", ">=0", false},
	{">=3.12", ">3.12", false},
	{">=3.12,<3.14", ">=3.12", false},
	{">=3.12", ">=3.12,<3.14", false},
	{"~=1.0", "~=1.0.0", false},
	{"==1.0.*", "==1.*", false},
	{"==1.0.*", "==1.0.*", true},
	{"==1.0+cpu", "==1.0", false},
	{"===foo", "===FOO", true},
	{"===1.0", "===1", false},
}

func TestSpecifiersStringAndEqual(t *testing.T) {
	for _, tt := range specStringCases {
		s, err := ParseSpecifiers(tt.in)
		if err != nil {
			t.Fatalf("ParseSpecifiers(%q): %v", tt.in, err)
		}
		if got := s.String(); got != tt.str {
			t.Errorf("ParseSpecifiers(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		r, err := ParseSpecifiers(s.String())
		if err != nil || !r.Equal(s) || r.String() != s.String() {
			t.Errorf("ParseSpecifiers(%q).String() does not round-trip: %v", tt.in, err)
		}
		if s.IsEmpty() != (tt.str == "") {
			t.Errorf("ParseSpecifiers(%q).IsEmpty() = %v", tt.in, s.IsEmpty())
		}
	}

	for _, tt := range specEqualCases {
		a, errA := ParseSpecifiers(tt.a)
		b, errB := ParseSpecifiers(tt.b)
		if errA != nil || errB != nil {
			t.Fatalf("ParseSpecifiers: %v %v", errA, errB)
		}
		if got := a.Equal(b); got != tt.want {
			t.Errorf("%q Equal %q = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := b.Equal(a); got != tt.want {
			t.Errorf("%q Equal %q = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestSpecifiersText(t *testing.T) {
	var s Specifiers
	if err := s.UnmarshalText([]byte(">=3.12,<3.14")); err != nil {
		t.Fatal(err)
	}
	b, _ := s.MarshalText()
	if string(b) != ">=3.12, <3.14" {
		t.Errorf("MarshalText = %q", b)
	}
	if err := s.UnmarshalText([]byte(">=")); err == nil {
		t.Error("UnmarshalText(>=) succeeded")
	}
}

// specifierSeeds are FuzzParseSpecifiers' seeds, each with specifierSeedVersion.
var (
	specifierSeeds       = []string{">=3.12, <3.14", "==2.*", "~=1.4.5a4", "===foo", "!=1.0+cpu", ""}
	specifierSeedVersion = "3.13.0"
)

func FuzzParseSpecifiers(f *testing.F) {
	for _, s := range specifierSeeds {
		f.Add(s, specifierSeedVersion)
	}
	f.Fuzz(func(t *testing.T, spec, version string) {
		s, err := ParseSpecifiers(spec)
		if err != nil {
			return
		}
		r, err := ParseSpecifiers(s.String())
		if err != nil {
			t.Fatalf("ParseSpecifiers(%q).String() = %q does not parse: %v", spec, s.String(), err)
		}
		if !r.Equal(s) {
			t.Fatalf("ParseSpecifiers(%q) not Equal to its String() %q", spec, s.String())
		}
		v, err := Parse(version)
		if err != nil {
			return
		}
		for _, pre := range []bool{false, true} {
			if s.Contains(v, pre) != r.Contains(v, pre) {
				t.Fatalf("%q and its String() %q disagree on %q", spec, s.String(), version)
			}
		}
	})
}
