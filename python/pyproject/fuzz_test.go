package pyproject

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: any bytes either parse or give an error naming the file; a
// project that parses has its groups' closures computable.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../examples/ktrdr/pyproject.toml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("[project]\nname = \"a\"\nversion = \"1\"\n[dependency-groups]\ndev = [{include-group = \"dev\"}]\n"))
	f.Add([]byte("[project]\nname = \"a\"\n[project]\nname = \"b\"\n"))
	f.Add([]byte("[project]\nname = \"a\"\nversion = \"1\"\ndependencies = [\"x[\" ]\n"))
	f.Add([]byte("[project\x00]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("pyproject.toml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "pyproject.toml") {
				t.Errorf("error without the file name: %v", err)
			}
			return
		}
		for g := range p.DependencyGroups {
			_, _ = p.GroupClosure(g)
		}
		_ = p.SourceURL()
	})
}

// TestHostileProjects: duplicate keys, binary, deep nesting and huge
// strings give an error naming pyproject.toml (and the line of a TOML
// error) in a message of bounded length, or a project; never a panic.
func TestHostileProjects(t *testing.T) {
	const head = "[project]\nname = \"a\"\nversion = \"1\"\n"
	for name, tc := range map[string]struct{ data, want string }{
		"duplicate key":         {head + "name = \"b\"\n", "pyproject.toml:4"},
		"duplicate table":       {head + "[project]\n", "pyproject.toml:4"},
		"binary":                {"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "pyproject.toml"},
		"deep arrays":           {head + "x = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n", ""},
		"deep inline tables":    {head + "x = " + strings.Repeat("{a = ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n", ""},
		"huge dependency":       {head + "dependencies = [\"" + strings.Repeat("x", 16<<20) + " >= 1\"]\n", ""},
		"huge bad dependency":   {head + "dependencies = [\"x >= " + strings.Repeat("1", 1<<20) + "!\"]\n", "pyproject.toml"},
		"huge requires-python":  {head + "requires-python = \">=" + strings.Repeat("3.", 8<<20) + "\"\n", ""},
		"dependencies a string": {head + "dependencies = \"numpy\"\n", "pyproject.toml"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("pyproject.toml", []byte(tc.data))
			if err == nil {
				if tc.want != "" {
					t.Fatalf("accepted; want an error naming %q", tc.want)
				}
				return
			}
			if !strings.Contains(err.Error(), "pyproject.toml") || (tc.want != "" && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("the error does not name %q: %.300v", tc.want, err)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("a %d-byte error: %.300v", len(err.Error()), err)
			}
		})
	}
}
