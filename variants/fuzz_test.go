package variants

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseSpec: whatever the bytes, the spec reader returns a spec or an
// error naming the file, and never panics. The seeds are KTRDR's spec, the
// second example's pyproject.toml and the odd shapes of TestSpecErrors.
func FuzzParseSpec(f *testing.F) {
	f.Add(defaultSpecFile)
	if b, err := os.ReadFile(filepath.Join("..", "examples", "signals", "pyproject.toml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"[tool.ktrdr-images]\nimage = \"api\"\n",
		"[[tool.ktrdr-images.image]]\nname = \"a\"\ncommand = []\n",
		"[[tool.ktrdr-images.image]]\nname = \"a\"\napp = \"m:a\"\nport = 70000\n",
		"[[tool.ktrdr-images.image]]\nname = \"a\"\ntools = [[], [1]]\nhealth-expect = { a = [1] }\n",
		"[tool.ktrdr-images]\nlabels = { a = { b = 1 } }\n[[tool.ktrdr-images.image]]\nname = \"a\"\ncommand = [\"x\"]\nenv = { A = 1 }\n",
		"[[tool.ktrdr-images.image]]\nname = \"a\"\nname = \"b\"\n",
		"[tool]\nktrdr-images = 1\n",
		"\x00\xff[[",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec("app/pyproject.toml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "app/pyproject.toml") {
				t.Errorf("the error does not name the file: %v", err)
			}
			return
		}
		if s == nil {
			return // no [tool.ktrdr-images] table
		}
		for _, v := range s.Variants {
			if v.Name == "" {
				t.Errorf("an image without a name: %+v", v)
			}
		}
	})
}
