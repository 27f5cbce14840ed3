package variants

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// A TOML document read into a tree that remembers where each key is, so
// that every error about the spec (an unknown key, a wrong type, a port out
// of range) can name the file, line and key. go-toml's decoder gives
// positions for syntax and type errors only; the spec's checks need them
// for every key, so the tree is built from go-toml's parser (its unstable
// AST, which the decoder itself is made of).

// tnode is one TOML value.
type tnode struct {
	kind unstable.Kind
	// data is a scalar's value: a string decoded, other scalars as
	// written.
	data string
	// elems are an array's elements (an array of tables included).
	elems []*tnode
	// table is a table's (or inline table's) content.
	table *ttable
	// line is where the value's key is (its header's, for a table).
	line int
}

// ttable is a table: its keys in the order they were written.
type ttable struct {
	keys    []string
	entries map[string]*tnode
	// explicit: defined by a header or an inline table, not only
	// implied by a dotted key or a sub-table's header.
	explicit bool
}

func newTable() *ttable { return &ttable{entries: map[string]*tnode{}} }

func (t *ttable) get(k string) *tnode { return t.entries[k] }

func (t *ttable) set(k string, n *tnode) {
	if _, ok := t.entries[k]; !ok {
		t.keys = append(t.keys, k)
	}
	t.entries[k] = n
}

// parseTree reads a TOML document. Errors are syntax errors, with the line
// and column: the caller adds the file.
func parseTree(data []byte) (*ttable, error) {
	root := newTable()
	var p unstable.Parser
	p.Reset(data)
	cur := root
	lineOf := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 && n.Raw.Offset == 0 {
			return 0
		}
		return p.Shape(n.Raw).Start.Line
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			keys, first := keyParts(e.Key())
			line := lineOf(first)
			t := root
			for i, k := range keys[:len(keys)-1] {
				next, err := descend(t, k, line)
				if err != nil {
					return nil, fmt.Errorf("line %d: key %s: %w", line, strings.Join(keys[:i+1], "."), err)
				}
				t = next
			}
			last := keys[len(keys)-1]
			if e.Kind == unstable.ArrayTable {
				n := t.get(last)
				if n == nil {
					n = &tnode{kind: unstable.Array, line: line}
					t.set(last, n)
				} else if n.kind != unstable.Array || len(n.elems) == 0 || n.elems[0].table == nil {
					return nil, fmt.Errorf("line %d: [[%s]]: %s is already defined as a %s", line, strings.Join(keys, "."), last, kindName(n))
				}
				tbl := newTable()
				tbl.explicit = true
				n.elems = append(n.elems, &tnode{kind: unstable.Table, table: tbl, line: line})
				cur = tbl
				continue
			}
			n := t.get(last)
			switch {
			case n == nil:
				tbl := newTable()
				tbl.explicit = true
				t.set(last, &tnode{kind: unstable.Table, table: tbl, line: line})
				cur = tbl
			case n.table != nil && !n.table.explicit:
				n.table.explicit = true
				n.line = line
				cur = n.table
			default:
				return nil, fmt.Errorf("line %d: [%s] is defined twice", line, strings.Join(keys, "."))
			}
		case unstable.KeyValue:
			if err := setKeyValue(&p, cur, e); err != nil {
				return nil, err
			}
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		if ok := asParserError(err, &pe); ok {
			pos := p.Shape(p.Range(pe.Highlight)).Start
			return nil, fmt.Errorf("line %d, column %d: malformed TOML: %s", pos.Line, pos.Column, pe.Message)
		}
		return nil, fmt.Errorf("malformed TOML: %w", err)
	}
	return root, nil
}

func asParserError(err error, pe **unstable.ParserError) bool {
	e, ok := err.(*unstable.ParserError)
	if ok {
		*pe = e
	}
	return ok
}

// descend goes into the table k of t, creating it when absent; the last
// element of an array of tables is the table a header continues.
func descend(t *ttable, k string, line int) (*ttable, error) {
	n := t.get(k)
	if n == nil {
		tbl := newTable()
		t.set(k, &tnode{kind: unstable.Table, table: tbl, line: line})
		return tbl, nil
	}
	if n.table != nil {
		return n.table, nil
	}
	if n.kind == unstable.Array && len(n.elems) > 0 && n.elems[len(n.elems)-1].table != nil {
		return n.elems[len(n.elems)-1].table, nil
	}
	return nil, fmt.Errorf("is a %s, not a table", kindName(n))
}

func keyParts(it unstable.Iterator) ([]string, *unstable.Node) {
	var keys []string
	var first *unstable.Node
	for it.Next() {
		if first == nil {
			first = it.Node()
		}
		keys = append(keys, string(it.Node().Data))
	}
	return keys, first
}

func setKeyValue(p *unstable.Parser, t *ttable, e *unstable.Node) error {
	keys, first := keyParts(e.Key())
	line := p.Shape(first.Raw).Start.Line
	for i, k := range keys[:len(keys)-1] {
		next, err := descend(t, k, line)
		if err != nil {
			return fmt.Errorf("line %d: key %s: %w", line, strings.Join(keys[:i+1], "."), err)
		}
		t = next
	}
	last := keys[len(keys)-1]
	if t.get(last) != nil {
		return fmt.Errorf("line %d: key %s is defined twice", line, strings.Join(keys, "."))
	}
	v, err := value(p, e.Value(), line)
	if err != nil {
		return err
	}
	t.set(last, v)
	return nil
}

func value(p *unstable.Parser, n *unstable.Node, line int) (*tnode, error) {
	switch n.Kind {
	case unstable.Array:
		out := &tnode{kind: unstable.Array, line: line}
		it := n.Children()
		for it.Next() {
			c, err := value(p, it.Node(), line)
			if err != nil {
				return nil, err
			}
			out.elems = append(out.elems, c)
		}
		return out, nil
	case unstable.InlineTable:
		tbl := newTable()
		tbl.explicit = true
		it := n.Children()
		for it.Next() {
			if err := setKeyValue(p, tbl, it.Node()); err != nil {
				return nil, err
			}
		}
		return &tnode{kind: unstable.Table, table: tbl, line: line}, nil
	default:
		return &tnode{kind: n.Kind, data: string(n.Data), line: line}, nil
	}
}

// kindName is how errors name a value's type.
func kindName(n *tnode) string {
	switch n.kind {
	case unstable.String:
		return "string"
	case unstable.Integer:
		return "integer"
	case unstable.Float:
		return "float"
	case unstable.Bool:
		return "boolean"
	case unstable.Array:
		if len(n.elems) > 0 && n.elems[0].table != nil && n.elems[0].kind == unstable.Table {
			return "array of tables"
		}
		return "array"
	case unstable.Table:
		return "table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "date/time"
	}
	return n.kind.String()
}

// The typed readers below each turn one node into a Go value, or an error
// saying what was expected. The caller names the file, line and key.

func (n *tnode) str() (string, error) {
	if n.kind != unstable.String {
		return "", fmt.Errorf("expected a string, not a %s", kindName(n))
	}
	return n.data, nil
}

func (n *tnode) boolean() (bool, error) {
	if n.kind != unstable.Bool {
		return false, fmt.Errorf("expected true or false, not a %s", kindName(n))
	}
	return n.data == "true", nil
}

func (n *tnode) integer() (int64, error) {
	if n.kind != unstable.Integer {
		return 0, fmt.Errorf("expected an integer, not a %s", kindName(n))
	}
	s := strings.ReplaceAll(n.data, "_", "")
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("expected an integer: %s is out of range", n.data)
	}
	return v, nil
}

func (n *tnode) strs() ([]string, error) {
	if n.kind != unstable.Array {
		return nil, fmt.Errorf("expected an array of strings, not a %s", kindName(n))
	}
	out := []string{}
	for i, e := range n.elems {
		s, err := e.str()
		if err != nil {
			return nil, fmt.Errorf("element %d: %w (expected an array of strings)", i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (n *tnode) strTable() (map[string]string, []string, error) {
	if n.kind != unstable.Table {
		return nil, nil, fmt.Errorf("expected a table of strings, not a %s", kindName(n))
	}
	out := map[string]string{}
	for _, k := range n.table.keys {
		s, err := n.table.entries[k].str()
		if err != nil {
			return nil, nil, fmt.Errorf("key %s: %w", k, err)
		}
		out[k] = s
	}
	return out, n.table.keys, nil
}

// scalar is a string, integer, float or boolean as a Go value (for the
// health check's expected JSON).
func (n *tnode) scalar() (any, error) {
	switch n.kind {
	case unstable.String:
		return n.data, nil
	case unstable.Bool:
		return n.data == "true", nil
	case unstable.Integer:
		v, err := n.integer()
		return float64(v), err
	case unstable.Float:
		v, err := strconv.ParseFloat(strings.ReplaceAll(n.data, "_", ""), 64)
		if err != nil {
			return nil, fmt.Errorf("expected a number: %s", n.data)
		}
		return v, nil
	}
	return nil, fmt.Errorf("expected a string, number or boolean, not a %s", kindName(n))
}
