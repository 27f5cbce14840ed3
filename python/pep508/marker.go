package pep508

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ktrdr/ktrdr-images/python/pep440"
)

// ErrInvalidMarker is wrapped by every error ParseMarker returns.
var ErrInvalidMarker = errors.New("invalid PEP 508 marker")

// markerVariables maps every accepted spelling of a marker variable to its
// canonical PEP 508 name. The dotted forms and python_implementation are
// the deprecated PEP 345 spellings that packaging still accepts.
var markerVariables = map[string]string{
	"implementation_name":            "implementation_name",
	"implementation_version":         "implementation_version",
	"os_name":                        "os_name",
	"platform_machine":               "platform_machine",
	"platform_python_implementation": "platform_python_implementation",
	"platform_release":               "platform_release",
	"platform_system":                "platform_system",
	"platform_version":               "platform_version",
	"python_full_version":            "python_full_version",
	"python_version":                 "python_version",
	"sys_platform":                   "sys_platform",
	"extra":                          "extra",

	"os.name":                        "os_name",
	"sys.platform":                   "sys_platform",
	"platform.machine":               "platform_machine",
	"platform.python_implementation": "platform_python_implementation",
	"platform.version":               "platform_version",
	"python_implementation":          "platform_python_implementation",
}

// Marker is a parsed PEP 508 environment marker such as
// "python_full_version >= '3.13' and platform_machine == 'x86_64'".
// It is an immutable value type. The zero value is the empty marker,
// which is always true.
type Marker struct {
	root *node
}

type nodeKind uint8

const (
	nodeCompare nodeKind = iota
	nodeAnd
	nodeOr
)

// node is one node of a marker's expression tree. Nodes are never
// modified once built, so Markers can share them.
type node struct {
	kind     nodeKind
	children []*node // nodeAnd, nodeOr: at least two, none of the same kind
	lhs, rhs operand // nodeCompare
	op       string  // nodeCompare: ==, !=, <, <=, >, >=, ~=, ===, in, not in
}

// operand is one side of a comparison: a variable or a string literal.
type operand struct {
	variable string // canonical variable name, or "" for a literal
	value    string // the literal's value
}

// ParseMarker parses a PEP 508 environment marker: comparisons
// "<variable> <op> '<string>'" (either side may be the variable; strings
// use single or double quotes) with the operators ==, !=, <, <=, >, >=,
// ~=, ===, in and not in, combined with "and" (binding tighter) and "or"
// and grouped with parentheses. Variables are the PEP 508 ones, "extra",
// and the deprecated spellings os.name, sys.platform, platform.machine,
// platform.python_implementation, platform.version and
// python_implementation. A blank string gives the empty marker.
//
// Errors say what was expected at which character offset, quoting the
// marker, and wrap ErrInvalidMarker.
func ParseMarker(s string) (Marker, error) {
	p := &parser{src: s, what: ErrInvalidMarker}
	p.skipWS()
	if p.pos == len(s) {
		return Marker{}, nil
	}
	n, err := p.parseOr()
	if err != nil {
		return Marker{}, err
	}
	p.skipWS()
	if p.pos != len(s) {
		return Marker{}, p.errorf(p.pos, `"and", "or" or the end of the marker`)
	}
	return Marker{root: n}, nil
}

// parser is a recursive-descent parser over src. It is shared by
// ParseMarker and ParseRequirement; what is the sentinel error wrapped by
// its errors.
type parser struct {
	src  string
	pos  int
	what error
}

// errorf reports that expected was expected at byte offset off.
func (p *parser) errorf(off int, expected string) error {
	found := "the end of the input"
	if off < len(p.src) {
		r, _ := utf8.DecodeRuneInString(p.src[off:])
		found = fmt.Sprintf("%q", r)
	}
	return fmt.Errorf("%w %s: expected %s at character offset %d, found %s",
		p.what, pep440.Clip(p.src), expected, utf8.RuneCountInString(p.src[:off]), found)
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

func (p *parser) skipWS() {
	for p.pos < len(p.src) && isWS(p.src[p.pos]) {
		p.pos++
	}
}

func isWordChar(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// keyword reports whether the word w starts at the current position and is
// not followed by another word character. It does not consume it.
func (p *parser) keyword(w string) bool {
	if !strings.HasPrefix(p.src[p.pos:], w) {
		return false
	}
	end := p.pos + len(w)
	return end == len(p.src) || !isWordChar(p.src[end])
}

// parseOr parses operands joined by "or"; "and" binds tighter.
func (p *parser) parseOr() (*node, error) { return p.parseJunction("or", nodeOr, p.parseAnd) }

// parseAnd parses expressions joined by "and".
func (p *parser) parseAnd() (*node, error) { return p.parseJunction("and", nodeAnd, p.parseExpr) }

// parseJunction parses one or more operands, each read by operand, joined
// by the keyword word, into a node of kind (or the single operand alone).
func (p *parser) parseJunction(word string, kind nodeKind, operand func() (*node, error)) (*node, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	nodes := []*node{first}
	for {
		save := p.pos
		p.skipWS()
		if !p.keyword(word) {
			p.pos = save
			break
		}
		p.pos += len(word)
		n, err := operand()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return junction(kind, nodes...), nil
}

func (p *parser) parseExpr() (*node, error) {
	p.skipWS()
	if p.pos < len(p.src) && p.src[p.pos] == '(' {
		p.pos++
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		p.skipWS()
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return nil, p.errorf(p.pos, `"and", "or" or ")"`)
		}
		p.pos++
		return n, nil
	}
	lhs, err := p.parseOperand(`a marker variable, a quoted string or "("`)
	if err != nil {
		return nil, err
	}
	p.skipWS()
	op, err := p.parseOp()
	if err != nil {
		return nil, err
	}
	p.skipWS()
	rhsAt := p.pos
	rhs, err := p.parseOperand("a marker variable or a quoted string")
	if err != nil {
		return nil, err
	}
	switch {
	case lhs.variable == "" && rhs.variable == "":
		return nil, p.errorf(rhsAt, fmt.Sprintf("a marker variable on one side of %q (both sides are strings)", op))
	case lhs.variable != "" && rhs.variable != "":
		return nil, p.errorf(rhsAt, fmt.Sprintf("a quoted string on one side of %q (both sides are variables)", op))
	}
	return &node{kind: nodeCompare, lhs: lhs, rhs: rhs, op: op}, nil
}

// parseOperand reads a quoted string or a marker variable.
func (p *parser) parseOperand(expected string) (operand, error) {
	if p.pos >= len(p.src) {
		return operand{}, p.errorf(p.pos, expected)
	}
	start := p.pos
	if q := p.src[p.pos]; q == '\'' || q == '"' {
		end := strings.IndexByte(p.src[p.pos+1:], q)
		if end < 0 {
			return operand{}, p.errorf(len(p.src), fmt.Sprintf("a closing %c for the string that starts at character offset %d", q, utf8.RuneCountInString(p.src[:start])))
		}
		p.pos += end + 2
		return operand{value: p.src[start+1 : start+1+end]}, nil
	}
	for p.pos < len(p.src) && (isWordChar(p.src[p.pos]) || p.src[p.pos] == '.') {
		p.pos++
	}
	name := p.src[start:p.pos]
	if name == "" {
		return operand{}, p.errorf(start, expected)
	}
	canonical, ok := markerVariables[name]
	if !ok {
		p.pos = start
		return operand{}, p.errorf(start, expected+fmt.Sprintf(" (%q is not a marker variable)", name))
	}
	return operand{variable: canonical}, nil
}

// parseOp reads a comparison operator, "in" or "not in".
func (p *parser) parseOp() (string, error) {
	for _, op := range []string{"===", "==", "!=", "~=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(p.src[p.pos:], op) {
			p.pos += len(op)
			return op, nil
		}
	}
	if p.keyword("in") {
		p.pos += len("in")
		return "in", nil
	}
	if p.keyword("not") {
		p.pos += len("not")
		if p.pos >= len(p.src) || !isWS(p.src[p.pos]) {
			return "", p.errorf(p.pos, `whitespace after "not"`)
		}
		p.skipWS()
		if !p.keyword("in") {
			return "", p.errorf(p.pos, `"in" after "not"`)
		}
		p.pos += len("in")
		return "not in", nil
	}
	return "", p.errorf(p.pos, "a comparison operator (==, !=, <, <=, >, >=, ~=, ===, in, not in)")
}

// junction builds an and/or node over children, flattening children of
// the same kind; a single child is returned as is. The children's own
// slices are never modified.
func junction(kind nodeKind, children ...*node) *node {
	if len(children) == 1 {
		return children[0]
	}
	var flat []*node
	for _, c := range children {
		if c.kind == kind {
			flat = append(flat, c.children...)
		} else {
			flat = append(flat, c)
		}
	}
	return &node{kind: kind, children: flat}
}

// And returns the marker that is true when both a and b are. If either is
// empty (always true) the other is returned.
func And(a, b Marker) Marker {
	switch {
	case a.root == nil:
		return b
	case b.root == nil:
		return a
	}
	return Marker{root: junction(nodeAnd, a.root, b.root)}
}

// Or returns the marker that is true when a or b is. If either is empty
// (always true) the result is empty (always true) too.
func Or(a, b Marker) Marker {
	if a.root == nil || b.root == nil {
		return Marker{}
	}
	return Marker{root: junction(nodeOr, a.root, b.root)}
}

// IsEmpty reports whether m is the empty marker, which is always true.
func (m Marker) IsEmpty() bool {
	return m.root == nil
}

// String returns m in canonical form: canonical variable names, single
// spaces, strings in single quotes (double quotes when the string contains
// a single quote), and parentheses only where "or" is nested in "and",
// for example "python_full_version >= '3.13' and (sys_platform ==
// 'linux' or platform_machine == 'x86_64')". The empty marker gives "".
// ParseMarker(m.String()) yields a marker that evaluates like m.
func (m Marker) String() string {
	if m.root == nil {
		return ""
	}
	var b strings.Builder
	m.root.write(&b)
	return b.String()
}

func (n *node) write(b *strings.Builder) {
	switch n.kind {
	case nodeCompare:
		n.lhs.write(b)
		b.WriteByte(' ')
		b.WriteString(n.op)
		b.WriteByte(' ')
		n.rhs.write(b)
	case nodeAnd, nodeOr:
		sep := " and "
		if n.kind == nodeOr {
			sep = " or "
		}
		for i, c := range n.children {
			if i > 0 {
				b.WriteString(sep)
			}
			if c.kind == nodeOr && n.kind == nodeAnd {
				b.WriteByte('(')
				c.write(b)
				b.WriteByte(')')
			} else {
				c.write(b)
			}
		}
	}
}

func (o operand) write(b *strings.Builder) {
	if o.variable != "" {
		b.WriteString(o.variable)
		return
	}
	q := byte('\'')
	if strings.IndexByte(o.value, '\'') >= 0 {
		q = '"'
	}
	b.WriteByte(q)
	b.WriteString(o.value)
	b.WriteByte(q)
}

// Variables returns the sorted canonical names of the marker variables m
// uses, each once, for example ["platform_machine", "sys_platform"]. It
// tells whether a marker can depend on the platform (platform_machine,
// sys_platform, platform_system, …), the Python version or extras.
func (m Marker) Variables() []string {
	var vars []string
	var walk func(n *node)
	walk = func(n *node) {
		if n.kind != nodeCompare {
			for _, c := range n.children {
				walk(c)
			}
			return
		}
		for _, o := range []operand{n.lhs, n.rhs} {
			if o.variable != "" {
				vars = append(vars, o.variable)
			}
		}
	}
	if m.root != nil {
		walk(m.root)
	}
	slices.Sort(vars)
	return slices.Compact(vars)
}

// Evaluate reports whether m holds in env. The empty marker is true.
//
// Comparisons follow packaging's markers.py: when the operator and the
// right-hand string form a valid PEP 440 specifier and the left-hand
// string is a valid PEP 440 version, the comparison is a PEP 440 one
// (pre-releases allowed), so python_full_version >= '3.13' holds for
// "3.13.0" and python_version == '3.13.*' for "3.13". Otherwise ==, !=,
// <, <=, > and >= compare the strings (by code point, as Python does),
// === compares them ignoring case, ~= is false, and in / not in test for
// a substring of the right-hand side.
//
// "extra == 'x'" holds when NormalizeName("x") is one of the active
// extras (env.Extras, normalized) and "extra != 'x'" is its negation, as
// in uv; with no active extras "extra == 'x'" is false. Other operators
// on extra hold when they hold for some active extra (or for "" when none
// is active), both sides normalized, as packaging evaluates them per
// extra.
func (m Marker) Evaluate(env Environment) bool {
	if m.root == nil {
		return true
	}
	extras := make([]string, len(env.Extras))
	for i, e := range env.Extras {
		extras[i] = NormalizeName(e)
	}
	return m.root.eval(&env, extras)
}

func (n *node) eval(env *Environment, extras []string) bool {
	switch n.kind {
	case nodeAnd:
		for _, c := range n.children {
			if !c.eval(env, extras) {
				return false
			}
		}
		return true
	case nodeOr:
		for _, c := range n.children {
			if c.eval(env, extras) {
				return true
			}
		}
		return false
	}
	if n.lhs.variable == "extra" || n.rhs.variable == "extra" {
		return n.evalExtra(extras)
	}
	lhs, rhs := n.lhs.value, n.rhs.value
	if n.lhs.variable != "" {
		lhs = env.value(n.lhs.variable)
	}
	if n.rhs.variable != "" {
		rhs = env.value(n.rhs.variable)
	}
	return evalOp(lhs, n.op, rhs)
}

func (n *node) evalExtra(extras []string) bool {
	literal := n.lhs.value
	if n.lhs.variable != "" {
		literal = n.rhs.value
	}
	literal = NormalizeName(literal)
	switch n.op {
	case "==":
		return slices.Contains(extras, literal)
	case "!=":
		return !slices.Contains(extras, literal)
	}
	candidates := extras
	if len(candidates) == 0 {
		candidates = []string{""}
	}
	for _, x := range candidates {
		lhs, rhs := x, literal
		if n.lhs.variable == "" {
			lhs, rhs = literal, x
		}
		if evalOp(lhs, n.op, rhs) {
			return true
		}
	}
	return false
}

// evalOp compares two marker values as packaging's _eval_op does.
func evalOp(lhs, op, rhs string) bool {
	switch op {
	case "in":
		return strings.Contains(rhs, lhs)
	case "not in":
		return !strings.Contains(rhs, lhs)
	}
	// packaging builds Specifier(op + rhs); an rhs that starts with an
	// operator character would splice into a different operator, and a
	// comma would make a set, so neither is treated as a version.
	if r := strings.TrimLeft(rhs, " \t"); r != "" && !strings.ContainsAny(r[:1], "=<>!~") && !strings.Contains(rhs, ",") {
		if spec, err := pep440.ParseSpecifiers(op + rhs); err == nil {
			if v, err := pep440.Parse(lhs); err == nil {
				return spec.Contains(v, true)
			}
		}
	}
	switch op {
	case "==":
		return lhs == rhs
	case "!=":
		return lhs != rhs
	case "<":
		return lhs < rhs
	case "<=":
		return lhs <= rhs
	case ">":
		return lhs > rhs
	case ">=":
		return lhs >= rhs
	case "===":
		return strings.ToLower(lhs) == strings.ToLower(rhs)
	}
	return false // ~= between non-versions is undefined
}

// MarshalText implements encoding.TextMarshaler using String.
func (m Marker) MarshalText() ([]byte, error) {
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseMarker.
func (m *Marker) UnmarshalText(text []byte) error {
	p, err := ParseMarker(string(text))
	if err != nil {
		return err
	}
	*m = p
	return nil
}
