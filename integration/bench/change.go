package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// CodeChange appends one comment line to the API's main module: a one-line
// change in application code.
func CodeChange(project string, n int) error {
	f := filepath.Join(project, "ktrdr", "api", "main.py")
	fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("code change: %w", err)
	}
	if _, err := fmt.Fprintf(fh, "# benchmark change %d\n", n); err != nil {
		fh.Close()
		return fmt.Errorf("code change: %w", err)
	}
	return fh.Close()
}

// DepMoves are the dependency changes the benchmark makes, in order: each
// moves one package of the dev group to the runtime dependencies, in
// pyproject.toml and uv.lock alike, so the lock stays valid and every
// package stays one the index serves.
var DepMoves = []string{"black", "mypy", "pytest"}

// MoveToRuntime moves the requirement on pkg from the dependency group
// group to the project's runtime dependencies, consistently in
// pyproject.toml and uv.lock (as `uv add pkg && uv remove --group group pkg`
// would leave them), and checks the result as `uv lock --check` would.
func MoveToRuntime(project, group, pkg string) error {
	pyPath := filepath.Join(project, "pyproject.toml")
	lockPath := filepath.Join(project, "uv.lock")
	py, err := os.ReadFile(pyPath)
	if err != nil {
		return fmt.Errorf("dependency change: %w", err)
	}
	lk, err := os.ReadFile(lockPath)
	if err != nil {
		return fmt.Errorf("dependency change: %w", err)
	}
	proj, lock, err := uvlock.LoadProject(project)
	if err != nil {
		return fmt.Errorf("dependency change: %w", err)
	}
	root := proj.Name

	// pyproject.toml: the group's line goes to [project].dependencies.
	lines := strings.Split(string(py), "\n")
	gs, ge, err := tomlList(lines, 0, "[dependency-groups]", group+" = [")
	if err != nil {
		return fmt.Errorf("%s: %w", pyPath, err)
	}
	i := slices.IndexFunc(lines[gs:ge], func(l string) bool { return isQuotedReq(l, pkg) })
	if i < 0 {
		return fmt.Errorf("%s: group %s has no requirement on %s", pyPath, group, pkg)
	}
	req := strings.TrimSpace(lines[gs+i])
	lines = slices.Delete(lines, gs+i, gs+i+1)
	_, de, err := tomlList(lines, 0, "[project]", "dependencies = [")
	if err != nil {
		return fmt.Errorf("%s: %w", pyPath, err)
	}
	if !strings.HasSuffix(req, ",") {
		req += ","
	}
	lines = slices.Insert(lines, de, "    "+req)
	newPy := strings.Join(lines, "\n")

	// uv.lock: the root package's edges and metadata.
	lines = strings.Split(string(lk), "\n")
	start := slices.Index(lines, fmt.Sprintf("name = %q", root))
	if start < 0 {
		return fmt.Errorf("%s: no package %s", lockPath, root)
	}
	edge := fmt.Sprintf("{ name = %q", pkg)
	var meta string
	for _, sect := range []struct{ header, list string }{
		{"[package.dev-dependencies]", group + " = ["},
		{"[package.metadata.requires-dev]", group + " = ["},
	} {
		s, e, err := tomlList(lines, start, sect.header, sect.list)
		if err != nil {
			return fmt.Errorf("%s: %w", lockPath, err)
		}
		j := slices.IndexFunc(lines[s:e], func(l string) bool {
			t := strings.TrimSpace(l)
			return t == edge+" }," || strings.HasPrefix(t, edge+",")
		})
		if j < 0 {
			return fmt.Errorf("%s: %s %s has no %s", lockPath, sect.header, group, pkg)
		}
		if sect.header == "[package.metadata.requires-dev]" {
			meta = lines[s+j]
		}
		lines = slices.Delete(lines, s+j, s+j+1)
	}
	for _, sect := range []struct{ header, list, line string }{
		{"", "dependencies = [", "    " + edge + " },"},
		{"[package.metadata]", "requires-dist = [", meta},
	} {
		s, e, err := tomlList(lines, start, sect.header, sect.list)
		if err != nil {
			return fmt.Errorf("%s: %w", lockPath, err)
		}
		// Keep the list sorted by name, as uv writes it.
		k := s
		for k < e && strings.TrimSpace(lines[k]) < strings.TrimSpace(sect.line) {
			k++
		}
		lines = slices.Insert(lines, k, sect.line)
	}
	newLock := strings.Join(lines, "\n")

	if err := os.WriteFile(pyPath, []byte(newPy), 0o644); err != nil {
		return fmt.Errorf("dependency change: %w", err)
	}
	if err := os.WriteFile(lockPath, []byte(newLock), 0o644); err != nil {
		return fmt.Errorf("dependency change: %w", err)
	}
	proj, lock, err = uvlock.LoadProject(project)
	if err == nil {
		err = uvlock.Check(proj, lock)
	}
	if err != nil {
		// Leave the project as it was.
		os.WriteFile(pyPath, py, 0o644)
		os.WriteFile(lockPath, lk, 0o644)
		return fmt.Errorf("moving %s from group %s to the runtime dependencies: %w", pkg, group, err)
	}
	return nil
}

// tomlList finds, after line from (and after the line header when not
// empty), the first line equal to list (a "key = [" opening a multi-line
// array) and returns the index of its first item and of its closing "]".
func tomlList(lines []string, from int, header, list string) (int, int, error) {
	i := from
	if header != "" {
		for i < len(lines) && strings.TrimSpace(lines[i]) != header {
			i++
		}
		if i == len(lines) {
			return 0, 0, fmt.Errorf("no %s", header)
		}
	}
	for i < len(lines) && strings.TrimSpace(lines[i]) != list {
		if header != "" && i > from && strings.HasPrefix(lines[i], "[") && strings.TrimSpace(lines[i]) != header {
			return 0, 0, fmt.Errorf("no multi-line %q in %s", list, header)
		}
		i++
	}
	if i == len(lines) {
		return 0, 0, fmt.Errorf("no multi-line %q", list)
	}
	s := i + 1
	e := s
	for e < len(lines) && strings.TrimSpace(lines[e]) != "]" {
		e++
	}
	if e == len(lines) {
		return 0, 0, fmt.Errorf("%q is not closed", list)
	}
	return s, e, nil
}

// isQuotedReq reports whether a TOML array line is a requirement string on
// pkg ("black>=24.1",).
func isQuotedReq(line, pkg string) bool {
	t := strings.TrimSpace(line)
	rest, ok := strings.CutPrefix(t, `"`+pkg)
	if !ok || rest == "" {
		return false
	}
	c := rest[0]
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
}
