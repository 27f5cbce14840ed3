package uvlock

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep440"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
)

// Flavour is the build of torch an image gets.
type Flavour string

// The torch flavours.
const (
	// FlavourNone: no torch at all; resolving fails if torch is in the set.
	FlavourNone Flavour = "none"
	// FlavourCPU: torch's CPU build, with every package that only the CUDA
	// build pulls in left out.
	FlavourCPU Flavour = "cpu"
	// FlavourCUDA: torch's CUDA build with one CUDA stack: as locked, or
	// with the nvidia-* wheels left to a CUDA base image (CUDAFromBase).
	FlavourCUDA Flavour = "cuda"
)

// Flavours lists the valid flavours.
func Flavours() []Flavour { return []Flavour{FlavourNone, FlavourCPU, FlavourCUDA} }

// ParseFlavour checks a flavour name.
func ParseFlavour(s string) (Flavour, error) {
	for _, f := range Flavours() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("torch flavour %q: expected one of none, cpu, cuda", s)
}

// Defaults for TorchOptions.
const (
	DefaultTorchPackage    = "torch"
	DefaultCPUIndex        = "https://download.pytorch.org/whl/cpu"
	DefaultCPULocalVersion = "cpu"
)

// TorchOptions chooses the build of the accelerated package (torch).
type TorchOptions struct {
	Flavour Flavour
	// CUDAFromBase leaves the nvidia-* wheels out of the CUDA flavour: the
	// image's base (a CUDA runtime image) provides those libraries.
	CUDAFromBase bool
	// Package is the accelerated package; DefaultTorchPackage when empty.
	Package string
	// CPUIndex serves the CPU builds; DefaultCPUIndex when empty.
	CPUIndex string
	// CPULocalVersion is the local version label of the builds CPUIndex
	// serves (torch 2.8.0 is 2.8.0+cpu there); DefaultCPULocalVersion when
	// empty, "-" for none.
	CPULocalVersion string
	// CUDAIndex, when set, serves the CUDA build (as download.pytorch.org's
	// cu12x paths do, or a mirror); the torch pin of the cuda flavour is
	// then taken from it by version, without the lock's hashes. Empty keeps
	// the locked index.
	CUDAIndex string
	// Extra forces the project extra that selects the flavour, for projects
	// that follow uv's PyTorch guide with conflicting flavour extras; found
	// from [tool.uv.sources] when empty.
	Extra string
}

func (o TorchOptions) pkg() string {
	if o.Package == "" {
		return DefaultTorchPackage
	}
	return pep508.NormalizeName(o.Package)
}

func (o TorchOptions) cpuIndex() string {
	if o.CPUIndex == "" {
		return DefaultCPUIndex
	}
	return o.CPUIndex
}

func (o TorchOptions) cpuLocal() string {
	switch o.CPULocalVersion {
	case "":
		return DefaultCPULocalVersion
	case "-":
		return ""
	}
	return o.CPULocalVersion
}

// AppliedFlavour records how a flavour was applied, for reports.
type AppliedFlavour struct {
	Flavour      Flavour
	CUDAFromBase bool
	// Extra is the project's flavour extra that was selected, when the
	// project declares flavour extras (uv's PyTorch pattern).
	Extra string
	// Method says how the flavour was obtained: "none", "project extra" or
	// "lock graph".
	Method string
}

// flavourPlan is decided before the walk: which extra, if any, to add.
type flavourPlan struct {
	extraExtras []string
	extra       string
}

var cudaIndex = regexp.MustCompile(`^cu[0-9]+$`)

// classifyIndex says which build an index (or an extra named like one)
// serves: "cpu", "cuda" or "".
func classifyIndex(s string) string {
	seg := strings.TrimSuffix(s, "/")
	if u, err := url.Parse(seg); err == nil && u.Path != "" {
		seg = u.Path
	}
	if i := strings.LastIndex(seg, "/"); i >= 0 {
		seg = seg[i+1:]
	}
	seg = strings.ToLower(seg)
	switch {
	case seg == "cpu":
		return "cpu"
	case cudaIndex.MatchString(seg):
		return "cuda"
	}
	return ""
}

// flavourExtras finds the extras the project declares for torch builds:
// [tool.uv.sources] entries for torch restricted to an extra and pointing
// at a CPU or CUDA index, as uv's PyTorch guide writes them. It maps the
// class ("cpu", "cuda") to the extras of that class.
func flavourExtras(proj *pyproject.Project, pkg string) map[string][]string {
	out := map[string][]string{}
	for _, s := range proj.UV.Sources[pkg] {
		if s.Extra == "" || s.Index == "" {
			continue
		}
		ix, ok := proj.IndexByName(s.Index)
		if !ok {
			continue
		}
		class := classifyIndex(ix.URL)
		if class == "" {
			class = classifyIndex(s.Extra)
		}
		if class != "" {
			out[class] = append(out[class], pep508.NormalizeName(s.Extra))
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func planFlavour(proj *pyproject.Project, req Request) (flavourPlan, error) {
	opts := req.Torch
	if opts.Flavour == "" || opts.Flavour == FlavourNone {
		if opts.Extra != "" {
			return flavourPlan{}, fmt.Errorf("torch flavour extra %q given with flavour none", opts.Extra)
		}
		return flavourPlan{}, nil
	}
	if _, err := ParseFlavour(string(opts.Flavour)); err != nil {
		return flavourPlan{}, err
	}
	if opts.Extra != "" {
		if !proj.HasExtra(opts.Extra) {
			return flavourPlan{}, fmt.Errorf("%s: torch flavour extra %q is not declared in [project.optional-dependencies] (declared extras: %s)", proj.Path, opts.Extra, listOrNone(proj.Extras()))
		}
		x := pep508.NormalizeName(opts.Extra)
		return flavourPlan{extraExtras: []string{x}, extra: x}, nil
	}
	byClass := flavourExtras(proj, opts.pkg())
	cands := byClass[string(opts.Flavour)]
	switch len(cands) {
	case 0:
		return flavourPlan{}, nil
	case 1:
		return flavourPlan{extraExtras: cands, extra: cands[0]}, nil
	}
	return flavourPlan{}, fmt.Errorf("%s: several extras select a %s build of %s (%s): choose one with the flavour extra option", proj.Path, opts.Flavour, opts.pkg(), strings.Join(cands, ", "))
}

// platformVariables are the marker variables that tell a platform-specific
// build's dependencies (PyPI's torch pulls its CUDA stack in under
// "platform_machine == 'x86_64' and sys_platform == 'linux'").
var platformVariables = map[string]bool{"platform_machine": true, "sys_platform": true, "platform_system": true}

func isPlatformEdge(d *Dependency) bool {
	if d == nil {
		return false
	}
	for _, v := range d.Marker.Variables() {
		if platformVariables[v] {
			return true
		}
	}
	return false
}

func applyFlavour(lock *Lock, g *graph, plan flavourPlan, req Request) (*Resolution, error) {
	opts := req.Torch
	flavour := opts.Flavour
	if flavour == "" {
		flavour = FlavourNone
	}
	tname := opts.pkg()
	all := g.reachable(nil)
	var torch *Package
	for p := range all {
		if p.Name == tname {
			torch = p
		}
	}
	res := &Resolution{Root: g.root, Flavour: AppliedFlavour{Flavour: flavour, CUDAFromBase: opts.CUDAFromBase, Extra: plan.extra}}
	finish := func(kept map[*Package]bool) (*Resolution, error) {
		pins, err := lock.pinsOf(kept)
		if err != nil {
			return nil, err
		}
		res.Pins = pins
		dropped := map[*Package]bool{}
		for p := range all {
			if !kept[p] {
				dropped[p] = true
			}
		}
		if res.Dropped, err = lock.pinsOf(dropped); err != nil {
			return nil, err
		}
		return res, nil
	}

	if flavour == FlavourNone {
		res.Flavour.Method = "none"
		if torch != nil {
			return nil, fmt.Errorf("torch flavour none, but %s %s is in the resolved set for the requested extras and groups (%s); drop the extra that brings it or choose flavour cpu or cuda", tname, torch.Version, lock.Path)
		}
		if opts.CUDAFromBase {
			return nil, fmt.Errorf("CUDA from the base image was asked for, but the torch flavour is none")
		}
		return finish(all)
	}
	if torch == nil {
		return nil, fmt.Errorf("torch flavour %s, but %s is not in the resolved set: select the extra that brings it (%s)", flavour, tname, lock.Path)
	}
	if flavour == FlavourCPU && opts.CUDAFromBase {
		return nil, fmt.Errorf("CUDA from the base image was asked for with torch flavour cpu; it applies to flavour cuda only")
	}

	// Edges from torch (or its extras) that only a platform-specific build
	// follows, as taken for this environment.
	var accel []*Dependency
	isTorchEdge := func(from node, e edge) bool {
		return from.pkg == torch && e.dep != nil && isPlatformEdge(e.dep)
	}
	for n, es := range g.edges {
		for _, e := range es {
			if isTorchEdge(n, e) {
				accel = append(accel, e.dep)
			}
		}
	}

	switch flavour {
	case FlavourCPU:
		if plan.extra != "" {
			res.Flavour.Method = "project extra"
			if classifyIndex(torch.Source.Registry) == "cuda" {
				return nil, fmt.Errorf("%s: torch flavour cpu selected extra %q, but it locks %s", lock.Path, plan.extra, torch.ID())
			}
			return finish(all)
		}
		res.Flavour.Method = "lock graph"
		kept := g.reachable(isTorchEdge)
		r, err := finish(kept)
		if err != nil {
			return nil, err
		}
		if classifyIndex(torch.Source.Registry) != "cpu" {
			for i := range r.Pins {
				if r.Pins[i].Name == tname {
					r.Pins[i] = cpuPin(r.Pins[i], opts)
				}
			}
		}
		return r, nil
	case FlavourCUDA:
		if plan.extra != "" {
			res.Flavour.Method = "project extra"
		} else {
			res.Flavour.Method = "lock graph"
			if len(accel) == 0 && classifyIndex(torch.Source.Registry) != "cuda" {
				return nil, fmt.Errorf("%s: torch flavour cuda: the locked %s has no CUDA dependencies for this environment (platform_machine %q); PyPI's torch is a CUDA build only on linux/amd64", lock.Path, torch.ID(), req.Env.PlatformMachine)
			}
		}
		kept := all
		if opts.CUDAFromBase {
			fromBase := func(from node, e edge) bool {
				return from.pkg == torch && e.dep != nil && strings.HasPrefix(e.to.pkg.Name, "nvidia-")
			}
			kept = g.reachable(fromBase)
		}
		r, err := finish(kept)
		if err != nil {
			return nil, err
		}
		if opts.CUDAIndex != "" && plan.extra == "" {
			for i := range r.Pins {
				if r.Pins[i].Name == tname {
					r.Pins[i].Index = opts.CUDAIndex
					r.Pins[i].Hashes = nil
				}
			}
		}
		return r, nil
	}
	return nil, fmt.Errorf("torch flavour %q: expected one of none, cpu, cuda", flavour)
}

// cpuPin turns a locked torch pin into the same version from the CPU index.
// The lock's hashes are for the files of another index, so none are kept.
func cpuPin(p Pin, opts TorchOptions) Pin {
	p.Index = opts.cpuIndex()
	p.Hashes = nil
	if local := opts.cpuLocal(); local != "" {
		if v, err := pep440.Parse(p.Version); err == nil && v.Local() == "" {
			p.Version = v.String() + "+" + local
		}
	}
	return p
}
