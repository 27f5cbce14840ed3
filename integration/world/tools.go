package world

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// modulePath is the module this harness belongs to; Up builds the pinned
// tools from its go.mod.
const modulePath = "github.com/ktrdr/ktrdr-images"

// goTools are the binaries built with `go build` from the module's tool
// directives (and the harness's own command, which serves the index).
var goTools = []string{
	"github.com/moby/buildkit/cmd/buildkitd",
	"github.com/moby/buildkit/cmd/buildctl",
	"github.com/distribution/distribution/v3/cmd/registry",
	modulePath + "/integration/world/cmd/ktrdr-world",
}

// goBuildTags are the tags BuildKit's own release builds use for a static
// buildkitd.
const goBuildTags = "osusergo netgo static_build seccomp"

// aptTools are the host commands taken from Debian, by command and package.
var aptTools = [][2]string{{"runc", "runc"}, {"mmdebstrap", "mmdebstrap"}}

// toolStamp records what the binaries in bin/ were built from.
type toolStamp struct {
	Go       string            `json:"go"`
	Tags     string            `json:"tags"`
	Modules  map[string]string `json:"modules"`
	Harness  string            `json:"harness"`
	Binaries map[string]int64  `json:"binaries"`
}

// moduleRoot finds the ktrdr-images checkout the process runs in.
func moduleRoot() (string, error) {
	gomod, err := output("", os.Environ(), "go", "env", "GOMOD")
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the ktrdr-images checkout (go env GOMOD is empty): run from the repository")
	}
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "module "+modulePath+"\n") {
		return "", fmt.Errorf("%s is not the %s module: run from the ktrdr-images repository", gomod, modulePath)
	}
	return filepath.Dir(gomod), nil
}

// installTools installs the Debian tools (when missing) and builds the Go
// ones (when missing or when go.mod, Go or the harness changed); between
// the two it calls aptDone, which may start work that needs only the
// Debian tools. It reports whether anything was (re)built.
func installTools(l layout, root string, aptDone func()) (bool, error) {
	changed := false
	aptLog := l.logFile("apt")
	os.Remove(l.logFile("go-build"))
	var missing []string
	for _, t := range aptTools {
		if _, err := exec.LookPath(t[0]); err != nil {
			missing = append(missing, t[1])
		}
	}
	if len(missing) > 0 {
		if os.Geteuid() != 0 {
			return false, failed("install "+strings.Join(missing, ", "), "", errors.New("not root: install them with apt-get, or run as root"))
		}
		if err := runLogged(aptLog, "", baseEnv("DEBIAN_FRONTEND=noninteractive"), "apt-get", "update"); err != nil {
			return false, failed("apt-get update", aptLog, err)
		}
		args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
		if err := runLogged(aptLog, "", baseEnv("DEBIAN_FRONTEND=noninteractive"), "apt-get", args...); err != nil {
			return false, failed("apt-get install "+strings.Join(missing, " "), aptLog, err)
		}
		changed = true
	}

	if aptDone != nil {
		aptDone()
	}

	want, err := wantToolStamp(root)
	if err != nil {
		return false, failed("reading tool versions from go.mod", "", err)
	}
	// Two groups, so that editing the harness rebuilds only its own
	// command, not buildkitd: the pinned tools (keyed by go.mod and Go) and
	// ktrdr-world (keyed by the harness's sources).
	pinned := want
	pinned.Harness = ""
	groups := []struct {
		stamp string
		want  toolStamp
		pkgs  []string
	}{
		{"tools.json", pinned, goTools[:3]},
		{"harness.json", toolStamp{Go: want.Go, Tags: want.Tags, Harness: want.Harness}, goTools[3:]},
	}
	for _, g := range groups {
		built, err := buildGoTools(l, root, g.stamp, g.want, g.pkgs)
		if err != nil {
			return false, err
		}
		changed = changed || built
	}
	return changed, nil
}

// buildGoTools builds pkgs into bin/ unless the stamp says they were built
// from the same inputs and they are intact.
func buildGoTools(l layout, root, stamp string, want toolStamp, pkgs []string) (bool, error) {
	stampPath := l.bin(stamp)
	var have toolStamp
	if readJSON(stampPath, &have) == nil && sameTools(have, want) && binariesIntact(l, have, pkgs) {
		return false, nil
	}
	goLog := l.logFile("go-build")
	newDir := l.bin(".new")
	os.RemoveAll(newDir)
	if err := os.MkdirAll(newDir, 0o755); err != nil {
		return false, err
	}
	args := append([]string{"build", "-trimpath", "-tags", goBuildTags, "-o", newDir + "/"}, pkgs...)
	if err := runLogged(goLog, root, os.Environ(), "go", args...); err != nil {
		return false, failed("building "+strings.Join(pkgs, ", ")+" (Go module proxy)", goLog, err)
	}
	want.Binaries = map[string]int64{}
	for _, t := range pkgs {
		name := filepath.Base(t)
		st, err := os.Stat(filepath.Join(newDir, name))
		if err != nil {
			return false, failed("building "+name, goLog, err)
		}
		if err := os.Rename(filepath.Join(newDir, name), l.bin(name)); err != nil {
			return false, err
		}
		want.Binaries[name] = st.Size()
	}
	os.RemoveAll(newDir)
	return true, writeJSON(stampPath, want)
}

func sameTools(a, b toolStamp) bool {
	if a.Go != b.Go || a.Tags != b.Tags || a.Harness != b.Harness || len(a.Modules) != len(b.Modules) {
		return false
	}
	for k, v := range b.Modules {
		if a.Modules[k] != v {
			return false
		}
	}
	return true
}

// binariesIntact checks that every binary is there with the size it was
// built with (a truncated or deleted binary is rebuilt).
func binariesIntact(l layout, s toolStamp, pkgs []string) bool {
	for _, t := range pkgs {
		name := filepath.Base(t)
		st, err := os.Stat(l.bin(name))
		if err != nil || st.Size() != s.Binaries[name] || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

func wantToolStamp(root string) (toolStamp, error) {
	s := toolStamp{Tags: goBuildTags, Modules: map[string]string{}}
	v, err := output(root, os.Environ(), "go", "env", "GOVERSION")
	if err != nil {
		return s, err
	}
	s.Go = v
	mods, err := output(root, os.Environ(), "go", "list", "-m", "-f", "{{.Path}} {{.Version}}",
		"github.com/moby/buildkit", "github.com/distribution/distribution/v3")
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(strings.NewReader(mods))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			s.Modules[f[0]] = f[1]
		}
	}
	h, err := hashTree(filepath.Join(root, "integration", "world"), ".go")
	if err != nil {
		return s, err
	}
	s.Harness = h
	return s, nil
}

// hashTree hashes the names and contents of the files under dir whose name
// ends in suffix.
func hashTree(dir, suffix string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, suffix) && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
