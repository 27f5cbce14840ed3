package pep508

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ktrdr/ktrdr-images/python/pep440"
)

// ErrInvalidRequirement is wrapped by every error ParseRequirement
// returns.
var ErrInvalidRequirement = errors.New("invalid PEP 508 requirement")

// Requirement is a parsed PEP 508 dependency specification such as
// "sqlalchemy[asyncio]>=2.0.0; python_version < '3.13'".
type Requirement struct {
	// Name is the distribution name as written; see NormalizedName.
	Name string
	// Extras are the requested extras as written (compare them after
	// NormalizeName), nil when there are none.
	Extras []string
	// Specifiers constrain the version; empty when none are given (and
	// always empty for a URL requirement).
	Specifiers pep440.Specifiers
	// URL is the direct reference of a "name @ url" requirement, or "".
	URL string
	// Marker is the environment marker after ";"; empty (always true)
	// when there is none.
	Marker Marker
}

// NormalizedName returns NormalizeName(r.Name).
func (r Requirement) NormalizedName() string {
	return NormalizeName(r.Name)
}

// String formats r as a PEP 508 requirement string with normalized
// specifiers and marker, for example "mcp[cli]>=1.2" or
// "pkg @ https://x/y.whl ; python_version < '3.13'".
func (r Requirement) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if len(r.Extras) > 0 {
		b.WriteByte('[')
		b.WriteString(strings.Join(r.Extras, ","))
		b.WriteByte(']')
	}
	if r.URL != "" {
		b.WriteString(" @ ")
		b.WriteString(r.URL)
		if !r.Marker.IsEmpty() {
			b.WriteByte(' ')
		}
	} else {
		b.WriteString(r.Specifiers.String())
	}
	if !r.Marker.IsEmpty() {
		b.WriteString("; ")
		b.WriteString(r.Marker.String())
	}
	return b.String()
}

// ParseRequirement parses a PEP 508 requirement string as found in the
// dependency lists of pyproject.toml:
//
//	name [ "[" extra, … "]" ] [ specifiers | "(" specifiers ")" | "@" url ] [ ";" marker ]
//
// for example "sqlalchemy[asyncio]>=2.0.0", "torch>=2.7.1; extra ==
// 'ml'", "mcp[cli] >= 1.2", "numpy (>=1.26)" and "pkg @
// https://x/y.whl ; python_version < '3.13'". As in packaging, a URL must
// be followed by whitespace before the ";" of a marker. Errors say what
// was expected at which character offset and wrap ErrInvalidRequirement.
func ParseRequirement(s string) (Requirement, error) {
	p := &parser{src: s, what: ErrInvalidRequirement}
	var r Requirement
	p.skipWS()
	name, err := p.parseIdentifier("a distribution name")
	if err != nil {
		return Requirement{}, err
	}
	r.Name = name
	p.skipWS()
	if p.peek() == '[' {
		r.Extras, err = p.parseExtras()
		if err != nil {
			return Requirement{}, err
		}
		p.skipWS()
	}
	switch c := p.peek(); {
	case c == '@':
		p.pos++
		p.skipWS()
		start := p.pos
		for p.pos < len(p.src) && !isWS(p.src[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return Requirement{}, p.errorf(start, "a URL after \"@\"")
		}
		r.URL = p.src[start:p.pos]
		p.skipWS()
		if p.pos < len(p.src) && p.src[p.pos] != ';' {
			return Requirement{}, p.errorf(p.pos, `whitespace and ";" before a marker, or the end of the requirement`)
		}
	case c == '(':
		p.pos++
		start := p.pos
		end := strings.IndexByte(p.src[start:], ')')
		if end < 0 {
			return Requirement{}, p.errorf(len(p.src), `")" to close the "(" at character offset `+fmt.Sprint(utf8.RuneCountInString(s[:start-1])))
		}
		r.Specifiers, err = p.parseSpecifiers(start, start+end)
		if err != nil {
			return Requirement{}, err
		}
		p.pos = start + end + 1
	case c != 0 && strings.IndexByte("<>=!~", c) >= 0:
		start := p.pos
		end := strings.IndexByte(p.src[start:], ';')
		if end < 0 {
			end = len(p.src) - start
		}
		r.Specifiers, err = p.parseSpecifiers(start, start+end)
		if err != nil {
			return Requirement{}, err
		}
		p.pos = start + end
	}
	p.skipWS()
	if p.pos == len(p.src) {
		return r, nil
	}
	if p.src[p.pos] != ';' {
		expected := `a version specifier, "[", "(", "@", ";" or the end of the requirement`
		if r.Extras != nil || !r.Specifiers.IsEmpty() {
			expected = `";" or the end of the requirement`
		}
		return Requirement{}, p.errorf(p.pos, expected)
	}
	p.pos++
	p.skipWS()
	if p.pos == len(p.src) {
		return Requirement{}, p.errorf(p.pos, `a marker after ";"`)
	}
	root, err := p.parseOr()
	if err != nil {
		return Requirement{}, err
	}
	p.skipWS()
	if p.pos != len(p.src) {
		return Requirement{}, p.errorf(p.pos, `"and", "or" or the end of the marker`)
	}
	r.Marker = Marker{root: root}
	return r, nil
}

// peek returns the current byte, or 0 at the end of the input.
func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// parseIdentifier reads a PEP 508 identifier: letters and digits,
// possibly with ".", "-" and "_" inside, starting and ending with a letter
// or digit.
func (p *parser) parseIdentifier(expected string) (string, error) {
	start := p.pos
	if p.pos >= len(p.src) || !isAlnum(p.src[p.pos]) {
		return "", p.errorf(p.pos, expected)
	}
	for p.pos < len(p.src) && (isAlnum(p.src[p.pos]) || strings.IndexByte("._-", p.src[p.pos]) >= 0) {
		p.pos++
	}
	for p.pos > start && !isAlnum(p.src[p.pos-1]) {
		p.pos--
	}
	return p.src[start:p.pos], nil
}

// parseExtras reads "[" extra ("," extra)* "]" (possibly empty).
func (p *parser) parseExtras() ([]string, error) {
	p.pos++ // '['
	extras := []string{}
	p.skipWS()
	if p.peek() == ']' {
		p.pos++
		return extras, nil
	}
	for {
		p.skipWS()
		x, err := p.parseIdentifier("an extra name")
		if err != nil {
			return nil, err
		}
		extras = append(extras, x)
		p.skipWS()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return extras, nil
		default:
			return nil, p.errorf(p.pos, `"," or "]" in the extras`)
		}
	}
}

// parseSpecifiers parses src[start:end] as a specifier set.
func (p *parser) parseSpecifiers(start, end int) (pep440.Specifiers, error) {
	text := p.src[start:end]
	if strings.TrimSpace(text) == "" {
		return pep440.Specifiers{}, p.errorf(start, "a version specifier")
	}
	spec, err := pep440.ParseSpecifiers(text)
	if err != nil {
		return pep440.Specifiers{}, fmt.Errorf("%w %s: bad version specifier at character offset %d: %w",
			ErrInvalidRequirement, pep440.Clip(p.src), utf8.RuneCountInString(p.src[:start]), err)
	}
	return spec, nil
}
