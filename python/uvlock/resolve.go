package uvlock

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep440"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
)

// DefaultIndex is the index uv locks from when a project names no other.
const DefaultIndex = "https://pypi.org/simple"

// Request says what to resolve: the root project's extras and dependency
// groups, the target environment, and the torch flavour.
type Request struct {
	// Extras of the root project to install (for example "ml").
	Extras []string
	// Groups are the root project's dependency groups to install; groups
	// they include (PEP 735 include-group) are added.
	Groups []string
	// Env is the target environment every marker is evaluated against; make
	// it with pep508.EnvironmentFor.
	Env pep508.Environment
	// Torch chooses the build of the accelerated package (see Flavour).
	Torch TorchOptions
}

// Pin is one package of the resolved set: what an installer installs.
type Pin struct {
	Name    string
	Version string
	// Index is the package index to take it from: the lock's registry, or
	// the CPU index for a CPU-flavoured torch. Empty for non-registry sources.
	Index string
	// Source is the lock's source of the package.
	Source Source
	// Hashes are the sha256 hashes the lock records for the files Index
	// serves ("sha256:..."); empty when they are not known (a flavour that
	// takes the package from another index than the one locked).
	Hashes []string
	// Package is the lock entry this pin comes from.
	Package *Package
}

// Requirement renders the pin as a requirements line "name==version".
func (p Pin) Requirement() string { return p.Name + "==" + p.Version }

// Resolution is the pinned set for one request.
type Resolution struct {
	// Root is the project's own lock entry; it is not among Pins.
	Root *Package
	// Pins are sorted by name.
	Pins []Pin
	// Dropped are the packages the lock has for this environment but the
	// torch flavour left out (CUDA-only packages of a CPU build, or nvidia-*
	// wheels provided by a CUDA base image), sorted by name.
	Dropped []Pin
	// Flavour is the torch flavour applied and how.
	Flavour AppliedFlavour
}

// Pin returns the pin named name (normalized), if present.
func (r *Resolution) Pin(name string) (Pin, bool) {
	n := pep508.NormalizeName(name)
	for _, p := range r.Pins {
		if p.Name == n {
			return p, true
		}
	}
	return Pin{}, false
}

// Names returns the names of the pins, sorted.
func (r *Resolution) Names() []string {
	out := make([]string, len(r.Pins))
	for i, p := range r.Pins {
		out[i] = p.Name
	}
	return out
}

// Resolve computes the exact pinned set that proj's lock gives for req, as
// `uv export --frozen --no-emit-project` with the same extras and groups
// would for that one environment, then applies the torch flavour. It fails
// when an extra or group is not declared by the project, when the target
// Python is outside the lock's requires-python, when the lock misses a
// package an edge needs, or when the flavour cannot be applied.
func Resolve(proj *pyproject.Project, lock *Lock, req Request) (*Resolution, error) {
	for _, e := range req.Extras {
		if !proj.HasExtra(e) {
			return nil, fmt.Errorf("%s: no extra %q in [project.optional-dependencies] (declared extras: %s)", proj.Path, e, listOrNone(proj.Extras()))
		}
	}
	groups, err := proj.GroupClosure(req.Groups...)
	if err != nil {
		return nil, err
	}
	if err := checkPython(lock, req.Env); err != nil {
		return nil, err
	}
	root, err := lock.Root(proj.NormalizedName())
	if err != nil {
		return nil, err
	}
	plan, err := planFlavour(proj, req)
	if err != nil {
		return nil, err
	}
	extras := normalizeAll(append(append([]string{}, req.Extras...), plan.extraExtras...))
	g, err := walk(lock, root, extras, groups, req.Env)
	if err != nil {
		return nil, err
	}
	return applyFlavour(lock, g, plan, req)
}

func checkPython(lock *Lock, env pep508.Environment) error {
	if lock.RequiresPython == "" || env.PythonFullVersion == "" {
		return nil
	}
	spec, err := pep440.ParseSpecifiers(lock.RequiresPython)
	if err != nil {
		return fmt.Errorf("%s: requires-python %s: %w", lock.Path, pep440.Clip(lock.RequiresPython), err)
	}
	v, err := pep440.Parse(env.PythonFullVersion)
	if err != nil {
		return fmt.Errorf("python version %q: %w", env.PythonFullVersion, err)
	}
	if !spec.Contains(v, true) {
		return fmt.Errorf("python %s is outside the lock's requires-python %s (%s): choose a Python version the project supports", env.PythonFullVersion, pep440.Clip(lock.RequiresPython), lock.Path)
	}
	return nil
}

// node is a vertex of the resolved graph: a package, or one of its extras,
// or (for the root) one of its dependency groups. Extras and groups are
// separate vertices so that removing an edge also removes what only that
// edge's extras brought in.
type node struct {
	pkg   *Package
	extra string
	group string
}

func (n node) String() string {
	switch {
	case n.extra != "":
		return n.pkg.Name + "[" + n.extra + "]"
	case n.group != "":
		return n.pkg.Name + " (group " + n.group + ")"
	}
	return n.pkg.Name
}

// edge is one followed dependency edge; dep is nil for the implicit edge
// from an extra or group vertex to its package.
type edge struct {
	to  node
	dep *Dependency
}

// graph is the part of the lock reachable for one environment.
type graph struct {
	root  *Package
	edges map[node][]edge
	order []node // discovery order, for deterministic errors
}

// ConflictExtra is how uv encodes an extra of a package inside lock markers
// when the project declares conflicts: extra == 'extra-{len}-{pkg}-{extra}'.
func ConflictExtra(pkg, extra string) string {
	pkg = pep508.NormalizeName(pkg)
	return fmt.Sprintf("extra-%d-%s-%s", len(pkg), pkg, pep508.NormalizeName(extra))
}

// ConflictGroup is uv's encoding of a dependency group inside lock markers:
// extra == 'group-{len}-{pkg}-{group}'.
func ConflictGroup(pkg, group string) string {
	pkg = pep508.NormalizeName(pkg)
	return fmt.Sprintf("group-%d-%s-%s", len(pkg), pkg, pep508.NormalizeName(group))
}

func walk(lock *Lock, root *Package, extras, groups []string, env pep508.Environment) (*graph, error) {
	// Lock markers see the root's active extras and groups in uv's
	// conflict encoding; plain extras never appear on lock edges.
	var active []string
	for _, e := range extras {
		active = append(active, ConflictExtra(root.Name, e))
	}
	for _, g := range groups {
		active = append(active, ConflictGroup(root.Name, g))
	}
	env = env.WithExtras(active...)

	g := &graph{root: root, edges: map[node][]edge{}}
	seen := map[node]bool{}
	var queue []node
	push := func(n node) {
		if !seen[n] {
			seen[n] = true
			g.order = append(g.order, n)
			queue = append(queue, n)
		}
	}
	rootNode := node{pkg: root}
	push(rootNode)
	for _, e := range extras {
		n := node{pkg: root, extra: e}
		g.edges[rootNode] = append(g.edges[rootNode], edge{to: n})
		push(n)
	}
	for _, gr := range groups {
		n := node{pkg: root, group: gr}
		g.edges[rootNode] = append(g.edges[rootNode], edge{to: n})
		push(n)
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		var deps []Dependency
		switch {
		case n.extra != "":
			deps = n.pkg.OptionalDependencies[n.extra]
			// The extra's package itself is installed too.
			g.edges[n] = append(g.edges[n], edge{to: node{pkg: n.pkg}})
			push(node{pkg: n.pkg})
		case n.group != "":
			deps = n.pkg.DevDependencies[n.group]
		default:
			deps = n.pkg.Dependencies
		}
		for i := range deps {
			d := &deps[i]
			if !d.Marker.Evaluate(env) {
				continue
			}
			target, err := lock.pick(d, n, env)
			if err != nil {
				return nil, err
			}
			to := node{pkg: target}
			g.edges[n] = append(g.edges[n], edge{to: to, dep: d})
			push(to)
			for _, x := range d.Extras {
				xn := node{pkg: target, extra: x}
				g.edges[n] = append(g.edges[n], edge{to: xn, dep: d})
				push(xn)
			}
		}
	}
	return g, nil
}

// pick finds the locked package a dependency edge points to: by version and
// source when the edge names them, else the only package of that name, else
// the one whose resolution-markers hold in env.
func (l *Lock) pick(d *Dependency, from node, env pep508.Environment) (*Package, error) {
	all := l.byName[d.Name]
	var cands []*Package
	for _, p := range all {
		if d.Version != "" && p.Version != d.Version {
			continue
		}
		if d.Source != nil && *d.Source != p.Source {
			continue
		}
		cands = append(cands, p)
	}
	want := d.Name
	if d.Version != "" {
		want += "==" + d.Version
	}
	switch len(cands) {
	case 1:
		return cands[0], nil
	case 0:
		if len(all) > 0 {
			var have []string
			for _, p := range all {
				have = append(have, p.ID())
			}
			return nil, fmt.Errorf("%s: %s depends on %s, but the lock has only %s; run `uv lock`", l.Path, from, want, strings.Join(have, ", "))
		}
		return nil, fmt.Errorf("%s: %s depends on %s, which is not locked; run `uv lock`", l.Path, from, want)
	}
	var matching []*Package
	for _, p := range cands {
		if len(p.ResolutionMarkers) == 0 {
			matching = append(matching, p)
			continue
		}
		for _, m := range p.ResolutionMarkers {
			if m.Evaluate(env) {
				matching = append(matching, p)
				break
			}
		}
	}
	if len(matching) == 1 {
		return matching[0], nil
	}
	var ids []string
	for _, p := range cands {
		ids = append(ids, p.ID())
	}
	if len(matching) == 0 {
		return nil, fmt.Errorf("%s: %s depends on %s, but none of the locked versions (%s) has resolution-markers that hold for this environment", l.Path, from, want, strings.Join(ids, ", "))
	}
	return nil, fmt.Errorf("%s: %s depends on %s, which is ambiguous for this environment: %s all match", l.Path, from, want, strings.Join(ids, ", "))
}

// reachable returns the packages reachable from the root without crossing
// a removed edge, excluding the root itself.
func (g *graph) reachable(removed func(from node, e edge) bool) map[*Package]bool {
	seen := map[node]bool{{pkg: g.root}: true}
	stack := []node{{pkg: g.root}}
	pkgs := map[*Package]bool{}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.pkg != g.root {
			pkgs[n.pkg] = true
		}
		for _, e := range g.edges[n] {
			if removed != nil && removed(n, e) {
				continue
			}
			if !seen[e.to] {
				seen[e.to] = true
				stack = append(stack, e.to)
			}
		}
	}
	return pkgs
}

// pinsOf turns a package set into sorted pins, refusing two versions of one
// name: an installer cannot install both.
func (l *Lock) pinsOf(pkgs map[*Package]bool) ([]Pin, error) {
	byName := map[string]*Package{}
	for p := range pkgs {
		if q, dup := byName[p.Name]; dup {
			a, b := q.ID(), p.ID()
			if a > b {
				a, b = b, a
			}
			return nil, fmt.Errorf("%s: two versions of %s are selected for this environment (%s and %s): the lock's markers or the requested extras conflict", l.Path, p.Name, a, b)
		}
		byName[p.Name] = p
	}
	pins := make([]Pin, 0, len(byName))
	for _, p := range byName {
		pins = append(pins, pinOf(p))
	}
	sort.Slice(pins, func(i, j int) bool { return pins[i].Name < pins[j].Name })
	return pins, nil
}

func pinOf(p *Package) Pin {
	pin := Pin{Name: p.Name, Version: p.Version, Source: p.Source, Index: p.Source.Registry, Package: p}
	pin.Hashes = artifactHashes(p, func(Artifact) bool { return true })
	return pin
}

// artifactHashes are the distinct hashes of p's wheels that keep accepts,
// then of its sdist, in the lock's order.
func artifactHashes(p *Package, keep func(Artifact) bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, w := range p.Wheels {
		if keep(w) {
			add(w.Hash)
		}
	}
	if p.Sdist != nil {
		add(p.Sdist.Hash)
	}
	return out
}

func normalizeAll(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		n := pep508.NormalizeName(x)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
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
