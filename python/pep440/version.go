// Package pep440 implements Python package versions and version specifiers
// as defined by PEP 440 (https://peps.python.org/pep-0440/), following the
// behaviour of the reference implementation in pypa/packaging
// (packaging.version and packaging.specifiers).
//
// It is used by python/pep508 to evaluate environment markers and by the
// uv.lock and pyproject.toml readers to decide which package versions and
// Python versions a requirement admits.
//
// Numeric components are kept as decimal strings, so versions with
// arbitrarily large numbers (for example date-based releases) parse and
// compare correctly without overflow.
package pep440

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidVersion is wrapped by every error Parse returns.
var ErrInvalidVersion = errors.New("invalid PEP 440 version")

// versionPattern is packaging's VERSION_PATTERN, anchored. Matching is
// case-insensitive; input is restricted to ASCII before matching so that
// Unicode case folding (for example U+212A KELVIN SIGN matching "k") cannot
// sneak non-ASCII letters into a version.
var versionPattern = regexp.MustCompile(`^(?i)v?` +
	`(?:([0-9]+)!)?` + // 1: epoch
	`([0-9]+(?:\.[0-9]+)*)` + // 2: release
	`(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?` + // 3,4: pre
	`(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?` + // 5: implicit post, 6,7: post
	`(?:[-_.]?(dev)[-_.]?([0-9]+)?)?` + // 8,9: dev
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`) // 10: local

// Version is a parsed PEP 440 version. It is an immutable value type; the
// zero value is the version "0".
//
// Two versions that differ only in spelling ("1.0" and "1.0.0", "1.0alpha1"
// and "1.0a1") compare equal with Compare; String returns the normalized
// spelling of the version as written ("1.0.0" stays "1.0.0").
type Version struct {
	epoch   string   // normalized decimal, "" or "0" means 0
	release []string // normalized decimals, never empty after Parse
	preL    string   // "", "a", "b" or "rc"
	preN    string
	hasPost bool
	postN   string
	hasDev  bool
	devN    string
	local   []string // lower-case; numeric segments without leading zeros
}

// Parse parses a PEP 440 version such as "2.7.1", "1!2.0", "1.0rc1",
// "1.0.post2.dev3" or "2.5.1+cu124". Leading and trailing whitespace, a
// leading "v" and every alternative spelling PEP 440 allows ("1.0-1",
// "1.0alpha", "1.0.RC.1", …) are accepted and normalized.
func Parse(s string) (Version, error) {
	t := strings.TrimSpace(s)
	for i := 0; i < len(t); i++ {
		if t[i] >= 0x80 {
			return Version{}, fmt.Errorf("%w %s: non-ASCII character at offset %d", ErrInvalidVersion, Clip(s), i)
		}
	}
	m := versionPattern.FindStringSubmatch(t)
	if m == nil {
		return Version{}, fmt.Errorf("%w %s", ErrInvalidVersion, Clip(s))
	}
	var v Version
	v.epoch = normNum(m[1])
	for _, r := range strings.Split(m[2], ".") {
		v.release = append(v.release, normNum(r))
	}
	if m[3] != "" {
		switch strings.ToLower(m[3]) {
		case "a", "alpha":
			v.preL = "a"
		case "b", "beta":
			v.preL = "b"
		default: // c, pre, preview, rc
			v.preL = "rc"
		}
		v.preN = normNum(m[4])
	}
	switch {
	case m[5] != "":
		v.hasPost, v.postN = true, normNum(m[5])
	case m[6] != "":
		v.hasPost, v.postN = true, normNum(m[7])
	}
	if m[8] != "" {
		v.hasDev, v.devN = true, normNum(m[9])
	}
	if m[10] != "" {
		for _, seg := range strings.FieldsFunc(strings.ToLower(m[10]), isLocalSep) {
			if isDigits(seg) {
				seg = normNum(seg)
			}
			v.local = append(v.local, seg)
		}
	}
	return v, nil
}

func isLocalSep(r rune) bool { return r == '.' || r == '-' || r == '_' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normNum strips leading zeros from a decimal string; "" becomes "0".
func normNum(s string) string {
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0"
	}
	return s
}

// cmpNum compares two normalized decimal strings numerically.
func cmpNum(a, b string) int {
	if a == "" {
		a = "0"
	}
	if b == "" {
		b = "0"
	}
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// String returns the normalized form of the version, for example "1.0a1"
// for "1.0-alpha.1" and "2.5.1+cu124" for "v2.5.1+CU124". Trailing zero
// release components are kept ("1.0.0" stays "1.0.0").
func (v Version) String() string {
	var b strings.Builder
	if v.epoch != "" && v.epoch != "0" {
		b.WriteString(v.epoch)
		b.WriteByte('!')
	}
	b.WriteString(v.releaseString())
	if v.preL != "" {
		b.WriteString(v.preL)
		b.WriteString(orZero(v.preN))
	}
	if v.hasPost {
		b.WriteString(".post")
		b.WriteString(orZero(v.postN))
	}
	if v.hasDev {
		b.WriteString(".dev")
		b.WriteString(orZero(v.devN))
	}
	if len(v.local) > 0 {
		b.WriteByte('+')
		b.WriteString(v.Local())
	}
	return b.String()
}

func (v Version) releaseString() string {
	if len(v.release) == 0 {
		return "0"
	}
	return strings.Join(v.release, ".")
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// Local returns the normalized local version label (the part after "+",
// with "-" and "_" separators replaced by "."), or "" if there is none.
func (v Version) Local() string {
	return strings.Join(v.local, ".")
}

// Public returns the version with its local version label removed.
func (v Version) Public() Version {
	v.local = nil
	return v
}

// BaseVersion returns the epoch and release segment of the version only,
// for example "1!2.0" for "1!2.0rc1.post2+local".
func (v Version) BaseVersion() Version {
	return Version{epoch: v.epoch, release: v.release}
}

// IsPrerelease reports whether the version is a pre-release or a
// development release ("1.0a1", "1.0rc2", "1.0.dev3", "1.0.post1.dev0").
func (v Version) IsPrerelease() bool {
	return v.preL != "" || v.hasDev
}

// IsPostRelease reports whether the version has a post-release segment.
func (v Version) IsPostRelease() bool {
	return v.hasPost
}

// IsDevRelease reports whether the version has a development-release
// segment.
func (v Version) IsDevRelease() bool {
	return v.hasDev
}

// Release returns the release segment as decimal strings, for example
// ["3", "13", "5"] for "3.13.5". The returned slice is a copy.
func (v Version) Release() []string {
	if len(v.release) == 0 {
		return []string{"0"}
	}
	return append([]string(nil), v.release...)
}

// Equal reports whether v and o denote the same version (Compare == 0).
func (v Version) Equal(o Version) bool {
	return v.Compare(o) == 0
}

// Compare returns -1, 0 or +1 when v sorts before, equal to or after o,
// using the PEP 440 ordering: epoch, release (trailing zeros ignored),
// dev < pre-releases (a < b < rc) < final < post-releases, and finally the
// local version label (a version without one sorts first).
func (v Version) Compare(o Version) int {
	if c := cmpNum(v.epoch, o.epoch); c != 0 {
		return c
	}
	for i := 0; i < len(v.release) || i < len(o.release); i++ {
		a, b := "0", "0"
		if i < len(v.release) {
			a = v.release[i]
		}
		if i < len(o.release) {
			b = o.release[i]
		}
		if c := cmpNum(a, b); c != 0 {
			return c
		}
	}
	if c := v.preKey().cmp(o.preKey()); c != 0 {
		return c
	}
	if c := v.postKey().cmp(o.postKey()); c != 0 {
		return c
	}
	if c := v.devKey().cmp(o.devKey()); c != 0 {
		return c
	}
	return cmpLocal(v.local, o.local)
}

// segKey is one component of packaging's _cmpkey: either -infinity,
// +infinity, or a (letter, number) pair.
type segKey struct {
	inf    int // -1, 0 (finite) or +1
	letter string
	num    string
}

func (k segKey) cmp(o segKey) int {
	if k.inf != o.inf {
		if k.inf < o.inf {
			return -1
		}
		return 1
	}
	if k.inf != 0 {
		return 0
	}
	if c := strings.Compare(k.letter, o.letter); c != 0 {
		return c
	}
	return cmpNum(k.num, o.num)
}

func (v Version) preKey() segKey {
	switch {
	case v.preL == "" && !v.hasPost && v.hasDev:
		// 1.0.dev0 sorts before 1.0a0.
		return segKey{inf: -1}
	case v.preL == "":
		return segKey{inf: +1}
	default:
		return segKey{letter: v.preL, num: v.preN}
	}
}

func (v Version) postKey() segKey {
	if !v.hasPost {
		return segKey{inf: -1}
	}
	return segKey{num: v.postN}
}

func (v Version) devKey() segKey {
	if !v.hasDev {
		return segKey{inf: +1}
	}
	return segKey{num: v.devN}
}

// cmpLocal orders local labels: none < any; then segment by segment,
// alphanumeric segments before numeric ones, alphanumeric segments
// lexicographically, numeric ones numerically; a shorter label whose
// segments are a prefix of a longer one sorts first.
func cmpLocal(a, b []string) int {
	if len(a) == 0 || len(b) == 0 {
		switch {
		case len(a) == len(b):
			return 0
		case len(a) == 0:
			return -1
		default:
			return 1
		}
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		an, bn := isDigits(a[i]), isDigits(b[i])
		var c int
		switch {
		case an && bn:
			c = cmpNum(a[i], b[i])
		case an:
			c = 1
		case bn:
			c = -1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler using the normalized form.
func (v Version) MarshalText() ([]byte, error) {
	return []byte(v.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using Parse.
func (v *Version) UnmarshalText(text []byte) error {
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// clipAt is how much of a long input an error message quotes.
const clipAt = 64

// Clip quotes s for an error message (as %q does), shortened to its first
// bytes and its length when it is long: a hostile 16 MB specifier gives a
// one-line error, not a copy of itself.
func Clip(s string) string {
	if len(s) <= clipAt {
		return strconv.Quote(s)
	}
	cut := clipAt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}
