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
