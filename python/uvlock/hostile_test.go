package uvlock

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/python/pyproject"
)

// Hostile locks (issue 17, drill 5): each is read to a result or to an
// error naming uv.lock, never a panic or a hang.

// bigLock is a lock whose project depends on n packages, each depending
// on the next and the last on the first: one cycle through all of them.
func bigLock(n int) (string, string) {
	var proj, lock strings.Builder
	proj.WriteString("[project]\nname = \"app\"\nversion = \"0.1.0\"\nrequires-python = \">=3.12\"\ndependencies = [\"p0\"]\n")
	lock.WriteString("version = 1\nrevision = 2\nrequires-python = \">=3.12\"\n\n")
	lock.WriteString("[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"p0\" }]\n\n[package.metadata]\nrequires-dist = [{ name = \"p0\" }]\n\n")
	for i := range n {
		fmt.Fprintf(&lock, "[[package]]\nname = \"p%d\"\nversion = \"1.0\"\nsource = { registry = \"https://pypi.org/simple\" }\ndependencies = [{ name = \"p%d\" }]\nwheels = [{ url = \"https://files.example/p%d-1.0-py3-none-any.whl\", hash = \"sha256:%064x\", size = 1000 }]\n\n", i, (i+1)%n, i, i)
	}
	return proj.String(), lock.String()
}

// TestHugeCyclicLock: 100,000 packages in one dependency cycle resolve
// to 100,000 pins (the cycle is walked once), under -short too: it takes
// about 3 s.
func TestHugeCyclicLock(t *testing.T) {
	const n = 100_000
	projText, lockText := bigLock(n)
	start := time.Now()
	proj, lock := inline(t, projText, lockText)
	parsed := time.Since(start)
	res, err := Resolve(proj, lock, Request{Env: env(t, "amd64", "3.13")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pins) != n {
		t.Fatalf("%d pins, want %d", len(res.Pins), n)
	}
	t.Logf("%d packages (%d MB of lock): parsed in %s, resolved in %s", n, len(lockText)>>20, parsed.Round(time.Millisecond), (time.Since(start) - parsed).Round(time.Millisecond))
}

// TestHostileLocks: broken, binary, nested and odd locks give an error
// naming uv.lock (and, for TOML errors, the line), never a panic.
func TestHostileLocks(t *testing.T) {
	real, err := os.ReadFile("testdata/torch28/uv.lock")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	binary := make([]byte, 64<<10)
	for i := range binary {
		binary[i] = byte(rng.IntN(256))
	}
	cases := map[string]struct {
		data string
		want string // in the error
	}{
		"binary":                       {string(binary), "uv.lock"},
		"nul bytes":                    {"version = 1\x00\x00\n", "uv.lock"},
		"duplicate keys":               {"version = 1\nrevision = 2\nversion = 1\n", "uv.lock:3"},
		"duplicate package table keys": {"version = 1\nrevision = 2\n[[package]]\nname = \"a\"\nname = \"b\"\n", "uv.lock:5"},
		"deep arrays":                  {"version = 1\nx = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n", ""},
		"deep tables":                  {"version = 1\n[" + strings.TrimSuffix(strings.Repeat("a.", 10_000), ".") + "]\n", ""},
		"huge string":                  {"version = 1\nrevision = 2\nrequires-python = \"" + strings.Repeat("x", 16<<20) + "\"\n", ""},
		"version string":               {"version = \"1\"\n", "uv.lock: version = 1: expected the integer"},
		"package not a table":          {"version = 1\npackage = 3\n", "uv.lock"},
		"dependency on nothing":        {"version = 1\nrevision = 2\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"ghost\" }]\n", ""},
	}
	// The real lock cut short at 64 places.
	for i := 1; i <= 64; i++ {
		cut := len(real) * i / 65
		cases[fmt.Sprintf("truncated at %d", cut)] = struct{ data, want string }{string(real[:cut]), ""}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			lock, err := Parse("uv.lock", []byte(tc.data))
			if err == nil {
				// A lock that reads must resolve or fail cleanly.
				proj := &pyproject.Project{Path: "pyproject.toml", Name: "app"}
				_, err = Resolve(proj, lock, Request{Env: env(t, "amd64", "3.13")})
				if err == nil {
					return
				}
			}
			if !strings.Contains(err.Error(), "uv.lock") && !strings.Contains(err.Error(), "pyproject.toml") {
				t.Errorf("the error names neither uv.lock nor pyproject.toml: %v", err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error lacks %q: %v", tc.want, err)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("a %d-byte error: a reader's error must be a message, not a dump", len(err.Error()))
			}
		})
	}
}
