// Package pyproject reads a Python project's pyproject.toml: the PEP 621
// [project] table (dependencies and optional dependencies), PEP 735
// [dependency-groups] (with include-group), [build-system], and the parts of
// [tool.uv] that decide what gets installed: conflicts, sources, index and
// the legacy dev-dependencies.
//
// It is the first half of what ktrdr-images knows about an application
// without running uv; python/uvlock is the second half and checks the lock
// against what this package reads. Nothing here touches the network or runs
// Python.
package pyproject

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	toml "github.com/pelletier/go-toml/v2"
)

// FileName is the name of the file this package reads.
const FileName = "pyproject.toml"

// Project is what ktrdr-images needs of a pyproject.toml.
type Project struct {
	// Path is the file the project was read from; errors name it.
	Path string
	// Data is the file's content, for readers of other [tool] tables
	// (the images' spec, variants.LoadSpec).
	Data []byte
	// Name is the project name as written; NormalizedName gives the PEP 503 form.
	Name    string
	Version string
	// Description is [project].description; URLs is [project.urls].
	Description string
	URLs        map[string]string
	// RequiresPython is the raw requires-python specifier ("" when absent).
	RequiresPython string
	// Dependencies are the runtime requirements of [project].dependencies.
	Dependencies []pep508.Requirement
	// OptionalDependencies maps each extra (normalized) to its requirements.
	OptionalDependencies map[string][]pep508.Requirement
	// DependencyGroups maps each PEP 735 group (normalized) to its entries.
	// uv's legacy [tool.uv] dev-dependencies are merged into the "dev" group.
	DependencyGroups map[string][]GroupEntry
	BuildSystem      BuildSystem
	UV               UVSettings
}

// SourceURL is the project's source repository from [project.urls]: the
// first of Source, Repository, Homepage (any case), "" when none is given.
func (p *Project) SourceURL() string {
	for _, want := range []string{"source", "repository", "source code", "homepage"} {
		for k, v := range p.URLs {
			if strings.EqualFold(k, want) {
				return v
			}
		}
	}
	return ""
}

// GroupEntry is one entry of a dependency group: either a requirement or an
// include-group reference to another group (PEP 735).
type GroupEntry struct {
	Requirement  *pep508.Requirement
	IncludeGroup string
}

// BuildSystem is the PEP 517/518 [build-system] table.
type BuildSystem struct {
	Requires     []string
	BuildBackend string
}

// UVSettings holds the [tool.uv] settings that change which packages and
// indexes an install uses.
type UVSettings struct {
	// Conflicts are the declared sets of mutually exclusive extras or groups.
	Conflicts [][]ConflictItem
	// Sources maps a normalized package name to its source entries.
	Sources map[string][]Source
	// Indexes are the [[tool.uv.index]] entries, in file order.
	Indexes []Index
	// DefaultGroups is [tool.uv] default-groups when set as a list.
	DefaultGroups []string
}

// ConflictItem is one member of a [tool.uv] conflicts set. Package is empty
// when it refers to the project itself.
type ConflictItem struct {
	Package string
	Extra   string
	Group   string
}

// Source is one [tool.uv.sources] entry for a package. Only the fields this
// tool acts on are kept; the others are recorded in Kind.
type Source struct {
	// Index names a [[tool.uv.index]] entry.
	Index string
	// Extra and Group restrict the source to an extra or group of the project.
	Extra string
	Group string
	// Marker restricts the source to an environment.
	Marker pep508.Marker
	// Kind is "index", "git", "url", "path" or "workspace".
	Kind string
}

// Index is one [[tool.uv.index]] entry.
type Index struct {
	Name     string
	URL      string
	Explicit bool
	Default  bool
}

// NormalizedName is the project name in PEP 503 normal form, as uv.lock
// records it.
func (p *Project) NormalizedName() string { return pep508.NormalizeName(p.Name) }

// HasExtra reports whether the project declares the extra.
func (p *Project) HasExtra(name string) bool {
	_, ok := p.OptionalDependencies[pep508.NormalizeName(name)]
	return ok
}

// Extras lists the declared extras, sorted.
func (p *Project) Extras() []string { return sortedKeys(p.OptionalDependencies) }

// Groups lists the declared dependency groups, sorted.
func (p *Project) Groups() []string { return sortedKeys(p.DependencyGroups) }

// IndexByName returns the [[tool.uv.index]] entry with that name.
func (p *Project) IndexByName(name string) (Index, bool) {
	for _, ix := range p.UV.Indexes {
		if ix.Name == name {
			return ix, true
		}
	}
	return Index{}, false
}

// GroupClosure returns the named groups plus every group they include,
// sorted and normalized. It fails on an unknown group or an include cycle.
func (p *Project) GroupClosure(names ...string) ([]string, error) {
	seen := map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		n := pep508.NormalizeName(name)
		for _, q := range path {
			if q == n {
				return fmt.Errorf("%s: dependency group %q includes itself (%s -> %s)", p.Path, n, strings.Join(path, " -> "), n)
			}
		}
		entries, ok := p.DependencyGroups[n]
		if !ok {
			if len(path) > 0 {
				return fmt.Errorf("%s: dependency group %q includes unknown group %q (declared groups: %s)", p.Path, path[len(path)-1], n, listOrNone(p.Groups()))
			}
			return fmt.Errorf("%s: no dependency group %q (declared groups: %s)", p.Path, n, listOrNone(p.Groups()))
		}
		if seen[n] {
			return nil
		}
		for _, e := range entries {
			if e.IncludeGroup != "" {
				if err := visit(e.IncludeGroup, append(path, n)); err != nil {
					return err
				}
			}
		}
		seen[n] = true
		return nil
	}
	for _, name := range names {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return sortedKeys(seen), nil
}

// Load reads and parses the pyproject.toml at path.
func Load(path string) (*Project, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s here: the build context must be a Python project with a %s", path, FileName, FileName)
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(path, data)
}

// raw mirrors the TOML layout; only the keys this package reads are listed.
type raw struct {
	Project *struct {
		Name                 string              `toml:"name"`
		Version              string              `toml:"version"`
		RequiresPython       string              `toml:"requires-python"`
		Dependencies         []string            `toml:"dependencies"`
		OptionalDependencies map[string][]string `toml:"optional-dependencies"`
		Dynamic              []string            `toml:"dynamic"`
		Description          string              `toml:"description"`
		URLs                 map[string]string   `toml:"urls"`
	} `toml:"project"`
	DependencyGroups map[string][]any `toml:"dependency-groups"`
	BuildSystem      *struct {
		Requires     []string `toml:"requires"`
		BuildBackend string   `toml:"build-backend"`
	} `toml:"build-system"`
	Tool struct {
		UV *struct {
			Conflicts       [][]map[string]string `toml:"conflicts"`
			Sources         map[string]any        `toml:"sources"`
			Index           []Index               `toml:"index"`
			DevDependencies []string              `toml:"dev-dependencies"`
			DefaultGroups   any                   `toml:"default-groups"`
		} `toml:"uv"`
	} `toml:"tool"`
}

// Parse parses pyproject.toml content; path is used in errors only.
func Parse(path string, data []byte) (*Project, error) {
	var r raw
	if err := toml.Unmarshal(data, &r); err != nil {
		return nil, TOMLError(path, err)
	}
	if r.Project == nil {
		return nil, fmt.Errorf("%s: no [project] table: ktrdr-images needs a PEP 621 project (name, version, dependencies)", path)
	}
	if r.Project.Name == "" {
		return nil, fmt.Errorf("%s: [project] has no name", path)
	}
	p := &Project{
		Path:                 path,
		Data:                 data,
		Name:                 r.Project.Name,
		Version:              r.Project.Version,
		Description:          r.Project.Description,
		URLs:                 r.Project.URLs,
		RequiresPython:       r.Project.RequiresPython,
		OptionalDependencies: map[string][]pep508.Requirement{},
		DependencyGroups:     map[string][]GroupEntry{},
		UV:                   UVSettings{Sources: map[string][]Source{}},
	}
	var err error
	if p.Dependencies, err = parseRequirements(path, "[project] dependencies", r.Project.Dependencies); err != nil {
		return nil, err
	}
	for extra, reqs := range r.Project.OptionalDependencies {
		n := pep508.NormalizeName(extra)
		if _, dup := p.OptionalDependencies[n]; dup {
			return nil, fmt.Errorf("%s: [project.optional-dependencies] declares extra %q twice (names are compared normalized)", path, n)
		}
		if p.OptionalDependencies[n], err = parseRequirements(path, fmt.Sprintf("[project.optional-dependencies] %s", extra), reqs); err != nil {
			return nil, err
		}
	}
	for group, entries := range r.DependencyGroups {
		n := pep508.NormalizeName(group)
		if _, dup := p.DependencyGroups[n]; dup {
			return nil, fmt.Errorf("%s: [dependency-groups] declares group %q twice (names are compared normalized)", path, n)
		}
		ges, err := parseGroup(path, group, entries)
		if err != nil {
			return nil, err
		}
		p.DependencyGroups[n] = ges
	}
	if r.BuildSystem != nil {
		p.BuildSystem = BuildSystem{Requires: r.BuildSystem.Requires, BuildBackend: r.BuildSystem.BuildBackend}
	}
	if uv := r.Tool.UV; uv != nil {
		if err := p.readUV(uv.Conflicts, uv.Sources, uv.Index, uv.DevDependencies, uv.DefaultGroups); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Project) readUV(conflicts [][]map[string]string, sources map[string]any, indexes []Index, dev []string, defaultGroups any) error {
	for i, set := range conflicts {
		var items []ConflictItem
		for _, m := range set {
			it := ConflictItem{Package: m["package"], Extra: m["extra"], Group: m["group"]}
			if (it.Extra == "") == (it.Group == "") {
				return fmt.Errorf("%s: [tool.uv] conflicts set %d: each item needs exactly one of extra or group, got %v", p.Path, i+1, m)
			}
			items = append(items, it)
		}
		p.UV.Conflicts = append(p.UV.Conflicts, items)
	}
	for i, ix := range indexes {
		if ix.URL == "" {
			return fmt.Errorf("%s: [[tool.uv.index]] entry %d (%q) has no url", p.Path, i+1, ix.Name)
		}
	}
	p.UV.Indexes = indexes
	for name, v := range sources {
		srcs, err := parseSources(v)
		if err != nil {
			return fmt.Errorf("%s: [tool.uv.sources] %s: %w", p.Path, name, err)
		}
		for _, s := range srcs {
			if s.Index != "" {
				if _, ok := p.IndexByName(s.Index); !ok {
					return fmt.Errorf("%s: [tool.uv.sources] %s refers to index %q, which no [[tool.uv.index]] entry names", p.Path, name, s.Index)
				}
			}
			if s.Extra != "" && !p.HasExtra(s.Extra) {
				return fmt.Errorf("%s: [tool.uv.sources] %s is restricted to extra %q, which [project.optional-dependencies] does not declare", p.Path, name, s.Extra)
			}
		}
		p.UV.Sources[pep508.NormalizeName(name)] = srcs
	}
	if len(dev) > 0 {
		reqs, err := parseRequirements(p.Path, "[tool.uv] dev-dependencies", dev)
		if err != nil {
			return err
		}
		for i := range reqs {
			p.DependencyGroups["dev"] = append(p.DependencyGroups["dev"], GroupEntry{Requirement: &reqs[i]})
		}
	}
	switch g := defaultGroups.(type) {
	case nil:
	case string: // "all"
		p.UV.DefaultGroups = []string{g}
	case []any:
		for _, x := range g {
			s, ok := x.(string)
			if !ok {
				return fmt.Errorf("%s: [tool.uv] default-groups: expected a list of group names or \"all\", got %v", p.Path, defaultGroups)
			}
			p.UV.DefaultGroups = append(p.UV.DefaultGroups, pep508.NormalizeName(s))
		}
	default:
		return fmt.Errorf("%s: [tool.uv] default-groups: expected a list of group names or \"all\", got %v", p.Path, defaultGroups)
	}
	return nil
}

func parseSources(v any) ([]Source, error) {
	var tables []map[string]any
	switch t := v.(type) {
	case map[string]any:
		tables = []map[string]any{t}
	case []any:
		for _, x := range t {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("expected a table or a list of tables, got %v", v)
			}
			tables = append(tables, m)
		}
	default:
		return nil, fmt.Errorf("expected a table or a list of tables, got %v", v)
	}
	var out []Source
	for _, m := range tables {
		var s Source
		str := func(k string) string { x, _ := m[k].(string); return x }
		s.Index, s.Extra, s.Group = str("index"), str("extra"), str("group")
		switch {
		case s.Index != "":
			s.Kind = "index"
		case m["git"] != nil:
			s.Kind = "git"
		case m["url"] != nil:
			s.Kind = "url"
		case m["path"] != nil:
			s.Kind = "path"
		case m["workspace"] != nil:
			s.Kind = "workspace"
		default:
			return nil, fmt.Errorf("source %v has none of index, git, url, path or workspace", m)
		}
		if mk := str("marker"); mk != "" {
			mm, err := pep508.ParseMarker(mk)
			if err != nil {
				return nil, fmt.Errorf("marker: %w", err)
			}
			s.Marker = mm
		}
		out = append(out, s)
	}
	return out, nil
}

func parseGroup(path, group string, entries []any) ([]GroupEntry, error) {
	var out []GroupEntry
	for i, e := range entries {
		switch v := e.(type) {
		case string:
			r, err := pep508.ParseRequirement(v)
			if err != nil {
				return nil, fmt.Errorf("%s: [dependency-groups] %s entry %d: %w", path, group, i+1, err)
			}
			out = append(out, GroupEntry{Requirement: &r})
		case map[string]any:
			inc, ok := v["include-group"].(string)
			if !ok || len(v) != 1 {
				return nil, fmt.Errorf("%s: [dependency-groups] %s entry %d: expected a requirement string or {include-group = \"name\"}, got %v", path, group, i+1, v)
			}
			out = append(out, GroupEntry{IncludeGroup: pep508.NormalizeName(inc)})
		default:
			return nil, fmt.Errorf("%s: [dependency-groups] %s entry %d: expected a requirement string or {include-group = \"name\"}, got %v", path, group, i+1, v)
		}
	}
	return out, nil
}

func parseRequirements(path, where string, in []string) ([]pep508.Requirement, error) {
	out := make([]pep508.Requirement, 0, len(in))
	for _, s := range in {
		r, err := pep508.ParseRequirement(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, where, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// TOMLError turns a TOML decoding error into one that names the file, line
// and column, so a user can jump to the mistake.
func TOMLError(path string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("%s:%d:%d: malformed TOML: %s", path, row, col, de.Error())
	}
	var se *toml.StrictMissingError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %s", path, se.String())
	}
	return fmt.Errorf("%s: malformed TOML: %w", path, err)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
