package pep440

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidSpecifier is wrapped by every error ParseSpecifiers returns.
var ErrInvalidSpecifier = errors.New("invalid PEP 440 version specifier")

// operators, longest first so that prefix matching picks "===" over "==".
var operators = []string{"===", "==", "!=", "~=", "<=", ">=", "<", ">"}

// clause is a single version clause such as ">=3.12" or "==2.*".
type clause struct {
	op        string // one of operators
	version   Version
	wildcard  bool   // "==V.*" or "!=V.*"
	arbitrary string // the operand of "===", as written
}

// Specifiers is a parsed PEP 440 version specifier set such as
// ">=3.12, <3.14" or "~=2.2,!=2.2.1". It is an immutable value type; the
// zero value (and the result of parsing "") is the empty set, which
// contains every version.
type Specifiers struct {
	clauses []clause
}

// ParseSpecifiers parses a comma-separated PEP 440 specifier set. Each
// clause is an operator (==, !=, <, <=, >, >=, ~=, ===) followed by a
// version; whitespace around clauses, commas and operators is allowed, and
// empty clauses (as in ">=1.0,") are ignored, as packaging does. The
// operator restrictions of PEP 440 are enforced: ".*" only with == and !=
// (and only after a release segment), local labels only with == and !=,
// and ~= needs at least two release components. "===" takes any
// non-blank string without ',', ';' or ')'.
func ParseSpecifiers(s string) (Specifiers, error) {
	var out Specifiers
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		c, err := parseClause(part)
		if err != nil {
			return Specifiers{}, fmt.Errorf("%w %s: %w", ErrInvalidSpecifier, Clip(s), err)
		}
		out.clauses = append(out.clauses, c)
	}
	return out, nil
}

func parseClause(s string) (clause, error) {
	var c clause
	for _, op := range operators {
		if strings.HasPrefix(s, op) {
			c.op = op
			break
		}
	}
	if c.op == "" {
		return clause{}, fmt.Errorf("clause %s: expected an operator (==, !=, <, <=, >, >=, ~=, ===) followed by a version", Clip(s))
	}
	text := strings.TrimSpace(s[len(c.op):])
	if text == "" {
		return clause{}, fmt.Errorf("clause %s: expected a version after %q", Clip(s), c.op)
	}
	if i := strings.IndexAny(text, " \t\r\n\f\v"); i >= 0 {
		return clause{}, fmt.Errorf("clause %s: unexpected whitespace inside the version", Clip(s))
	}
	if c.op == "===" {
		if i := strings.IndexAny(text, ";)"); i >= 0 {
			return clause{}, fmt.Errorf("clause %s: %q is not allowed in an arbitrary (===) version", Clip(s), text[i:i+1])
		}
		c.arbitrary = text
		return c, nil
	}
	if strings.HasSuffix(text, ".*") {
		if c.op != "==" && c.op != "!=" {
			return clause{}, fmt.Errorf("clause %s: a .* wildcard is only allowed with == and !=", Clip(s))
		}
		c.wildcard = true
		text = strings.TrimSuffix(text, ".*")
	}
	v, err := Parse(text)
	if err != nil {
		return clause{}, fmt.Errorf("clause %s: %w", Clip(s), err)
	}
	c.version = v
	switch {
	case c.wildcard && (v.preL != "" || v.hasPost || v.hasDev || len(v.local) > 0):
		return clause{}, fmt.Errorf("clause %s: a .* wildcard may only follow a release segment", Clip(s))
	case len(v.local) > 0 && c.op != "==" && c.op != "!=":
		return clause{}, fmt.Errorf("clause %s: a local version label is only allowed with == and !=", Clip(s))
	case c.op == "~=" && len(v.release) < 2:
		return clause{}, fmt.Errorf("clause %s: ~= needs at least two release components (like ~=1.4)", Clip(s))
	}
	return c, nil
}

// String returns the clause with its version normalized.
func (c clause) String() string {
	switch {
	case c.op == "===":
		return c.op + c.arbitrary
	case c.wildcard:
		return c.op + c.version.String() + ".*"
	default:
		return c.op + c.version.String()
	}
}

// key is the canonical identity of a clause for Equal: versions that
// compare equal under the clause's operator give the same key.
func (c clause) key() string {
	switch {
	case c.op == "===":
		return c.op + strings.ToLower(c.arbitrary)
	case c.wildcard, c.op == "~=":
		// Trailing zeros matter: ==1.0.* differs from ==1.*, ~=1.0.0 from ~=1.0.
		return c.String()
	default:
		v := c.version
		r := v.release
		for len(r) > 1 && r[len(r)-1] == "0" {
			r = r[:len(r)-1]
		}
		v.release = r
		return c.op + v.String()
	}
}

// String returns the specifier set with normalized versions, clauses in
// the order they were written, separated by ", " (the form uv writes), for
// example ">=3.12, <3.14". The empty set gives "".
func (s Specifiers) String() string {
	parts := make([]string, len(s.clauses))
	for i, c := range s.clauses {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// IsEmpty reports whether the set has no clauses (and so contains every
// version).
func (s Specifiers) IsEmpty() bool {
	return len(s.clauses) == 0
}

// Equal reports whether s and o consist of the same clauses, regardless of
// order, duplicates, spacing and version spelling (">=3.12,<3.14" equals
// "<3.14.0, >=3.12"). Clauses whose meaning depends on the number of
// release components (~= and .* wildcards) are compared as written after
// normalization, so "~=1.0" is not equal to "~=1.0.0".
func (s Specifiers) Equal(o Specifiers) bool {
	a, b := s.keys(), o.keys()
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

func (s Specifiers) keys() map[string]struct{} {
	m := make(map[string]struct{}, len(s.clauses))
	for _, c := range s.clauses {
		m[c.key()] = struct{}{}
	}
	return m
}

// Contains reports whether v satisfies every clause of the set.
//
// Pre-releases follow PEP 440 and packaging: when allowPrereleases is
// false, a pre-release or development version is rejected unless one of
// the inclusive clauses (==, <=, >=, ~=, ===) itself names a pre-release,
// as in ">=2.0b1" ("<2.0b1" does not opt in). The empty set contains every version, pre-releases included
// (packaging's SpecifierSet("") would reject pre-releases here).
func (s Specifiers) Contains(v Version, allowPrereleases bool) bool {
	if len(s.clauses) == 0 {
		return true
	}
	if !allowPrereleases && v.IsPrerelease() && !s.namesPrerelease() {
		return false
	}
	for _, c := range s.clauses {
		if !c.contains(v) {
			return false
		}
	}
	return true
}

// namesPrerelease mirrors packaging's Specifier.prereleases property:
// only the inclusive operators (==, <=, >=, ~=, ===) opt in.
func (s Specifiers) namesPrerelease() bool {
	for _, c := range s.clauses {
		switch {
		case c.op == "!=", c.op == "<", c.op == ">":
		case c.op == "===":
			if v, err := Parse(c.arbitrary); err == nil && v.IsPrerelease() {
				return true
			}
		case c.version.IsPrerelease():
			return true
		}
	}
	return false
}

// contains applies a single clause, ignoring the pre-release policy.
func (c clause) contains(v Version) bool {
	switch c.op {
	case "===":
		return strings.ToLower(v.String()) == strings.ToLower(c.arbitrary)
	case "==":
		return c.equal(v)
	case "!=":
		return !c.equal(v)
	case "<=":
		return v.Public().Compare(c.version) <= 0
	case ">=":
		return v.Public().Compare(c.version) >= 0
	case "<":
		if v.Compare(c.version) >= 0 {
			return false
		}
		// <3.1 must not match 3.1.dev0 or 3.1rc1 unless the bound is itself
		// a pre-release.
		if !c.version.IsPrerelease() && v.IsPrerelease() && v.BaseVersion().Equal(c.version.BaseVersion()) {
			return false
		}
		return true
	case ">":
		if v.Compare(c.version) <= 0 {
			return false
		}
		// >3.1 must not match 3.1.post1 unless the bound is itself a
		// post-release, nor 3.1+local.
		if !c.version.IsPostRelease() && v.IsPostRelease() && v.BaseVersion().Equal(c.version.BaseVersion()) {
			return false
		}
		if len(v.local) > 0 && v.BaseVersion().Equal(c.version.BaseVersion()) {
			return false
		}
		return true
	case "~=":
		// ~=X.Y.Z is >=X.Y.Z, ==X.Y.*; pre/post/dev segments of the bound
		// only affect the >= half.
		if v.Public().Compare(c.version) < 0 {
			return false
		}
		return prefixMatch(v, c.version.epoch, c.version.release[:len(c.version.release)-1])
	}
	return false
}

// equal implements == (without negation), with and without wildcard.
func (c clause) equal(v Version) bool {
	if c.wildcard {
		return prefixMatch(v, c.version.epoch, c.version.release)
	}
	if len(c.version.local) == 0 {
		v = v.Public()
	}
	return v.Compare(c.version) == 0
}

// prefixMatch reports whether v's epoch equals epoch and v's release,
// padded with zeros, starts with release. Pre, post, dev and local
// segments of v are ignored, as in packaging's prefix matching.
func prefixMatch(v Version, epoch string, release []string) bool {
	if cmpNum(v.epoch, epoch) != 0 {
		return false
	}
	for i, r := range release {
		got := "0"
		if i < len(v.release) {
			got = v.release[i]
		}
		if cmpNum(got, r) != 0 {
			return false
		}
	}
	return true
}

// MarshalText implements encoding.TextMarshaler using String.
func (s Specifiers) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseSpecifiers.
func (s *Specifiers) UnmarshalText(text []byte) error {
	p, err := ParseSpecifiers(string(text))
	if err != nil {
		return err
	}
	*s = p
	return nil
}
