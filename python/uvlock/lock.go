// Package uvlock reads uv's lock file (uv.lock, lock format version 1, any
// revision uv writes today) and answers the question every later stage of
// ktrdr-images asks: which exact packages does an image for this variant,
// platform and Python version contain?
//
// It does what `uv export --frozen --no-emit-project` does, without uv:
// Resolve walks the lock graph from the root project through the selected
// extras and dependency groups, evaluating each edge's PEP 508 marker for one
// target environment (python/pep508) and choosing among several locked
// versions of a name by the edge's version or the packages'
// resolution-markers. Flavour (flavour.go) then chooses the build of the
// torch package: none, CPU (the locked version from the CPU index with the
// CUDA-only packages dropped, computed from the lock graph), or CUDA (as
// locked, or with the nvidia-* wheels left to a CUDA base image).
//
// Check (check.go) compares the lock with pyproject.toml, so a lock that is
// out of date is refused with the reason instead of building the wrong image.
package uvlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	toml "github.com/pelletier/go-toml/v2"
)

// FileName is the lock file's name inside a project.
const FileName = "uv.lock"

// SupportedVersion is the lock format version this package reads. uv bumps
// "version" for breaking changes and "revision" for compatible ones, so every
// revision of version 1 is accepted.
const SupportedVersion = 1

// Lock is a parsed uv.lock.
type Lock struct {
	// Path is the file the lock was read from; errors name it.
	Path           string
	Version        int
	Revision       int
	RequiresPython string
	// ResolutionMarkers are the forks of a universal resolution, as written.
	ResolutionMarkers []string
	// Conflicts are the conflicting extra/group sets uv recorded.
	Conflicts [][]ConflictItem
	// Packages are all [[package]] entries in file order.
	Packages []*Package

	byName map[string][]*Package
}

// ConflictItem is one member of a conflicts set in the lock.
type ConflictItem struct {
	Package string `toml:"package"`
	Extra   string `toml:"extra"`
	Group   string `toml:"group"`
}

// Package is one [[package]] entry: one version of one distribution from
// one source.
type Package struct {
	Name    string
	Version string
	Source  Source
	// ResolutionMarkers restrict the forks in which this version is used.
	ResolutionMarkers []pep508.Marker
	Dependencies      []Dependency
	// OptionalDependencies maps an extra (normalized) to its edges.
	OptionalDependencies map[string][]Dependency
	// DevDependencies maps a dependency group (normalized) to its edges.
	DevDependencies map[string][]Dependency
	Metadata        Metadata
	Sdist           *Artifact
	Wheels          []Artifact
}

// ID names a package uniquely within a lock: name, version and source.
func (p *Package) ID() string {
	return p.Name + "==" + p.Version + " (" + p.Source.String() + ")"
}

// Source is where a package comes from; exactly one field is set.
type Source struct {
	Registry  string `toml:"registry"`
	Editable  string `toml:"editable"`
	Virtual   string `toml:"virtual"`
	Directory string `toml:"directory"`
	Path      string `toml:"path"`
	Git       string `toml:"git"`
	URL       string `toml:"url"`
}

// Kind is the name of the field that is set ("registry", "editable", ...).
func (s Source) Kind() string {
	k, _ := s.kindValue()
	return k
}

func (s Source) kindValue() (string, string) {
	switch {
	case s.Registry != "":
		return "registry", s.Registry
	case s.Editable != "":
		return "editable", s.Editable
	case s.Virtual != "":
		return "virtual", s.Virtual
	case s.Directory != "":
		return "directory", s.Directory
	case s.Path != "":
		return "path", s.Path
	case s.Git != "":
		return "git", s.Git
	case s.URL != "":
		return "url", s.URL
	}
	return "", ""
}

// String renders the source as "kind+value".
func (s Source) String() string {
	k, v := s.kindValue()
	if k == "" {
		return "unknown source"
	}
	return k + "+" + v
}

// IsProject reports whether the source is a local project tree (editable,
// virtual or directory), as the root project and workspace members are.
func (s Source) IsProject() bool {
	return s.Editable != "" || s.Virtual != "" || s.Directory != ""
}

// Dependency is one edge of the lock graph.
type Dependency struct {
	Name string
	// Version and Source are set by uv when several packages share Name.
	Version string
	Source  *Source
	// Extras are the target's extras this edge activates.
	Extras []string
	// Marker is the condition under which the edge is followed.
	Marker    pep508.Marker
	RawMarker string
}

// Artifact is a locked sdist or wheel.
type Artifact struct {
	URL  string `toml:"url"`
	Path string `toml:"path"`
	// Filename is set for sdists from some sources.
	Filename string `toml:"filename"`
	Hash     string `toml:"hash"`
	Size     int64  `toml:"size"`
}

// Metadata is [package.metadata]: the requirements uv resolved from, used
// to tell whether the lock is up to date with pyproject.toml.
type Metadata struct {
	RequiresDist  []MetadataRequirement
	RequiresDev   map[string][]MetadataRequirement
	ProvidesExtra []string
}

// MetadataRequirement is one entry of requires-dist or requires-dev.
type MetadataRequirement struct {
	Name      string
	Extras    []string
	Specifier string
	Marker    string
	Index     string
}

// Load reads and parses the uv.lock at path.
func Load(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s: run `uv lock` in the project and add %s to the build context", path, FileName, FileName)
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(path, data)
}

// LoadProject reads pyproject.toml and uv.lock from dir and checks that the
// lock is up to date with the project (see Check).
func LoadProject(dir string) (*pyproject.Project, *Lock, error) {
	proj, err := pyproject.Load(filepath.Join(dir, pyproject.FileName))
	if err != nil {
		return nil, nil, err
	}
	lock, err := Load(filepath.Join(dir, FileName))
	if err != nil {
		return nil, nil, err
	}
	if err := Check(proj, lock); err != nil {
		return nil, nil, err
	}
	return proj, lock, nil
}

type rawDep struct {
	Name    string   `toml:"name"`
	Version string   `toml:"version"`
	Source  *Source  `toml:"source"`
	Extra   []string `toml:"extra"`
	Marker  string   `toml:"marker"`
}

type rawMetaReq struct {
	Name      string   `toml:"name"`
	Extras    []string `toml:"extras"`
	Specifier string   `toml:"specifier"`
	Marker    string   `toml:"marker"`
	Index     string   `toml:"index"`
}

type rawPackage struct {
	Name                 string              `toml:"name"`
	Version              string              `toml:"version"`
	Source               Source              `toml:"source"`
	ResolutionMarkers    []string            `toml:"resolution-markers"`
	Dependencies         []rawDep            `toml:"dependencies"`
	OptionalDependencies map[string][]rawDep `toml:"optional-dependencies"`
	DevDependencies      map[string][]rawDep `toml:"dev-dependencies"`
	Metadata             struct {
		RequiresDist  []rawMetaReq            `toml:"requires-dist"`
		RequiresDev   map[string][]rawMetaReq `toml:"requires-dev"`
		ProvidesExtra []string                `toml:"provides-extras"`
	} `toml:"metadata"`
	Sdist  *Artifact  `toml:"sdist"`
	Wheels []Artifact `toml:"wheels"`
}

type rawLock struct {
	Version           *int             `toml:"version"`
	Revision          int              `toml:"revision"`
	RequiresPython    string           `toml:"requires-python"`
	ResolutionMarkers []string         `toml:"resolution-markers"`
	Conflicts         [][]ConflictItem `toml:"conflicts"`
	Package           []rawPackage     `toml:"package"`
	Distribution      []rawPackage     `toml:"distribution"`
}

// Parse parses uv.lock content; path is used in errors only.
func Parse(path string, data []byte) (*Lock, error) {
	// Read the version first, on its own, so a lock of an unknown format
	// gets a version error rather than a confusing shape error.
	var head struct {
		Version  any `toml:"version"`
		Revision any `toml:"revision"`
	}
	if err := toml.Unmarshal(data, &head); err != nil {
		return nil, pyproject.TOMLError(path, err)
	}
	v, ok := head.Version.(int64)
	if !ok {
		if head.Version == nil {
			return nil, fmt.Errorf("%s: no top-level version: this is not a uv.lock (expected version = %d)", path, SupportedVersion)
		}
		return nil, fmt.Errorf("%s: version = %v: expected the integer %d", path, head.Version, SupportedVersion)
	}
	if v != SupportedVersion {
		return nil, fmt.Errorf("%s: lock format version %d is not supported: ktrdr-images reads uv.lock version %d (re-lock with a uv release that writes version %d, or upgrade ktrdr-images)", path, v, SupportedVersion, SupportedVersion)
	}
	var r rawLock
	if err := toml.Unmarshal(data, &r); err != nil {
		return nil, pyproject.TOMLError(path, err)
	}
	l := &Lock{
		Path:              path,
		Version:           *r.Version,
		Revision:          r.Revision,
		RequiresPython:    r.RequiresPython,
		ResolutionMarkers: r.ResolutionMarkers,
		Conflicts:         r.Conflicts,
		byName:            map[string][]*Package{},
	}
	for _, m := range r.ResolutionMarkers {
		if _, err := pep508.ParseMarker(m); err != nil {
			return nil, fmt.Errorf("%s: top-level resolution-markers: %w", path, err)
		}
	}
	// Early uv releases (0.2) named the table [[distribution]].
	raws := append(r.Package, r.Distribution...)
	for i, rp := range raws {
		p, err := convertPackage(rp)
		if err != nil {
			return nil, fmt.Errorf("%s: [[package]] #%d (%s): %w", path, i+1, rp.Name, err)
		}
		for _, q := range l.byName[p.Name] {
			if q.Version == p.Version && q.Source == p.Source {
				return nil, fmt.Errorf("%s: [[package]] %s is locked twice", path, p.ID())
			}
		}
		l.Packages = append(l.Packages, p)
		l.byName[p.Name] = append(l.byName[p.Name], p)
	}
	return l, nil
}

func convertPackage(rp rawPackage) (*Package, error) {
	if rp.Name == "" {
		return nil, errors.New("no name")
	}
	p := &Package{
		Name:                 pep508.NormalizeName(rp.Name),
		Version:              rp.Version,
		Source:               rp.Source,
		OptionalDependencies: map[string][]Dependency{},
		DevDependencies:      map[string][]Dependency{},
		Sdist:                rp.Sdist,
		Wheels:               rp.Wheels,
	}
	if p.Source.Kind() == "" {
		return nil, errors.New("no source (expected one of registry, editable, virtual, directory, path, git, url)")
	}
	// Dynamic-version project members have no version in the lock.
	if p.Version == "" && !p.Source.IsProject() {
		return nil, errors.New("no version")
	}
	for _, m := range rp.ResolutionMarkers {
		mk, err := pep508.ParseMarker(m)
		if err != nil {
			return nil, fmt.Errorf("resolution-markers: %w", err)
		}
		p.ResolutionMarkers = append(p.ResolutionMarkers, mk)
	}
	var err error
	if p.Dependencies, err = convertDeps("dependencies", rp.Dependencies); err != nil {
		return nil, err
	}
	for extra, deps := range rp.OptionalDependencies {
		if p.OptionalDependencies[pep508.NormalizeName(extra)], err = convertDeps("optional-dependencies."+extra, deps); err != nil {
			return nil, err
		}
	}
	for group, deps := range rp.DevDependencies {
		if p.DevDependencies[pep508.NormalizeName(group)], err = convertDeps("dev-dependencies."+group, deps); err != nil {
			return nil, err
		}
	}
	conv := func(in []rawMetaReq) []MetadataRequirement {
		out := make([]MetadataRequirement, 0, len(in))
		for _, m := range in {
			out = append(out, MetadataRequirement{Name: pep508.NormalizeName(m.Name), Extras: m.Extras, Specifier: m.Specifier, Marker: m.Marker, Index: m.Index})
		}
		return out
	}
	p.Metadata.RequiresDist = conv(rp.Metadata.RequiresDist)
	p.Metadata.ProvidesExtra = rp.Metadata.ProvidesExtra
	if len(rp.Metadata.RequiresDev) > 0 {
		p.Metadata.RequiresDev = map[string][]MetadataRequirement{}
		for g, reqs := range rp.Metadata.RequiresDev {
			p.Metadata.RequiresDev[pep508.NormalizeName(g)] = conv(reqs)
		}
	}
	return p, nil
}

func convertDeps(where string, in []rawDep) ([]Dependency, error) {
	out := make([]Dependency, 0, len(in))
	for _, d := range in {
		if d.Name == "" {
			return nil, fmt.Errorf("%s: an entry has no name", where)
		}
		mk, err := pep508.ParseMarker(d.Marker)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, d.Name, err)
		}
		extras := make([]string, len(d.Extra))
		for i, e := range d.Extra {
			extras[i] = pep508.NormalizeName(e)
		}
		out = append(out, Dependency{
			Name:      pep508.NormalizeName(d.Name),
			Version:   d.Version,
			Source:    d.Source,
			Extras:    extras,
			Marker:    mk,
			RawMarker: d.Marker,
		})
	}
	return out, nil
}

// PackagesNamed returns every locked version of a (normalized) name.
func (l *Lock) PackagesNamed(name string) []*Package {
	return l.byName[pep508.NormalizeName(name)]
}

// Root returns the lock's entry for the project itself: the package named
// name whose source is the project tree.
func (l *Lock) Root(name string) (*Package, error) {
	for _, p := range l.byName[pep508.NormalizeName(name)] {
		if p.Source.IsProject() {
			return p, nil
		}
	}
	var roots []string
	for _, p := range l.Packages {
		if p.Source.IsProject() {
			roots = append(roots, p.Name)
		}
	}
	sort.Strings(roots)
	if len(roots) == 0 {
		return nil, fmt.Errorf("%s: no package with an editable, virtual or directory source: the lock has no root project named %q; run `uv lock`", l.Path, name)
	}
	return nil, fmt.Errorf("%s: project %q is not in the lock (its project packages: %s); run `uv lock`", l.Path, name, strings.Join(roots, ", "))
}
