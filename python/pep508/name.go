package pep508

import "strings"

// NormalizeName returns the PEP 503 normalized form of a distribution
// name: lower case, with every run of "-", "_" and "." replaced by a
// single "-" ("Foo.Bar__baz" becomes "foo-bar-baz"). PEP 685 applies the
// same normalization to extras, and PEP 735 to dependency group names.
func NormalizeName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('-')
	}
	return strings.ToLower(b.String())
}
