package probe

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep440"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// distsScript lists the installed distributions as the image's Python sees
// them (importlib.metadata over sys.path), with their requirements.
const distsScript = `import importlib.metadata as m, json, platform, sys
ds = [{"name": d.metadata["Name"], "version": d.version, "requires": d.requires or [], "path": str(getattr(d, "_path", ""))} for d in m.distributions()]
print(json.dumps({"python": platform.python_version(), "prefix": sys.prefix, "dists": ds}))`

// Dist is one installed distribution as the image reports it.
type Dist struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Requires []string `json:"requires"`
	Path     string   `json:"path"`
}

// checkDistributions checks the merged environment the way `pip check`
// does, and more: the installed distributions are exactly spec.Distributions
// (same versions, nothing missing, nothing extra, none twice), and every
// requirement of every one of them, with the extras it names, is met by
// an installed version, markers evaluated for the image's interpreter.
func checkDistributions(ctx context.Context, c *Container, spec Spec) Result {
	const name = "installed distributions = the lock's pins; requirements met"
	var out struct {
		Python string `json:"python"`
		Prefix string `json:"prefix"`
		Dists  []Dist `json:"dists"`
	}
	if err := c.JSON(ctx, distsScript, &out); err != nil {
		return result(name, err, "")
	}
	env, err := pep508.EnvironmentFor(ocispecs.Platform{OS: "linux", Architecture: c.img.Platform.Architecture, Variant: c.img.Platform.Variant}, out.Python)
	if err != nil {
		return result(name, fmt.Errorf("the image's python %q: %w", out.Python, err), "")
	}
	problems, provided := CompareDistributions(out.Dists, spec.Distributions, spec.Provided, env)
	if len(problems) > 0 {
		more := ""
		if len(problems) > 8 {
			more = fmt.Sprintf(" (and %d more)", len(problems)-8)
			problems = problems[:8]
		}
		return result(name, fmt.Errorf("%s%s", strings.Join(problems, "; "), more), "")
	}
	var reqs int
	for _, d := range out.Dists {
		reqs += len(d.Requires)
	}
	detail := fmt.Sprintf("%d distributions in %s, all pinned versions; %d requirements checked, all met", len(out.Dists), out.Prefix, reqs)
	if provided > 0 {
		detail += fmt.Sprintf(" (%d of them by the base image: %s)", provided, strings.Join(sortedKeys(spec.Provided), ", "))
	}
	return result(name, nil, detail)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CompareDistributions returns what is wrong with the installed dists
// against the expected name (normalized) → version set, and the unmet
// requirements, sorted; none when all is right. A requirement on a package
// of provided (left out on purpose: the nvidia-* wheels of a CUDA torch on
// a CUDA base image, which ships those libraries) is met by the base; the
// count of such requirements is returned.
func CompareDistributions(dists []Dist, want map[string]string, provided map[string]bool, env pep508.Environment) (problems []string, byBase int) {
	installed := map[string]Dist{}
	for _, d := range dists {
		n := pep508.NormalizeName(d.Name)
		if prev, dup := installed[n]; dup {
			problems = append(problems, fmt.Sprintf("%s is installed twice (%s in %s, %s in %s)", n, prev.Version, prev.Path, d.Version, d.Path))
		}
		installed[n] = d
	}
	for n, v := range want {
		d, ok := installed[n]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %s is pinned but not installed", n, v))
		case !sameVersion(d.Version, v):
			problems = append(problems, fmt.Sprintf("%s is %s, pinned %s", n, d.Version, v))
		}
	}
	for n, d := range installed {
		if _, ok := want[n]; !ok {
			problems = append(problems, fmt.Sprintf("%s %s is installed but not pinned", n, d.Version))
		}
	}
	// Requirements: each dist's, then those of the extras they name.
	type need struct {
		from  string
		extra string
	}
	queue := []need{}
	for n := range installed {
		queue = append(queue, need{from: n})
	}
	seen := map[need]bool{}
	for len(queue) > 0 {
		nd := queue[0]
		queue = queue[1:]
		if seen[nd] {
			continue
		}
		seen[nd] = true
		d := installed[nd.from]
		e := env.WithExtras()
		if nd.extra != "" {
			e = env.WithExtras(nd.extra)
		}
		for _, line := range d.Requires {
			r, err := pep508.ParseRequirement(line)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: requirement %q: %v", nd.from, line, err))
				continue
			}
			if !r.Marker.Evaluate(e) {
				continue
			}
			// With an extra active, the base requirements were checked
			// already: only those the extra turns on are new.
			if nd.extra != "" && r.Marker.Evaluate(env.WithExtras()) {
				continue
			}
			via := nd.from
			if nd.extra != "" {
				via += "[" + nd.extra + "]"
			}
			dep, ok := installed[r.NormalizedName()]
			if !ok && provided[r.NormalizedName()] {
				byBase++
				continue
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("%s requires %s, which is not installed", via, line))
				continue
			}
			if v, err := pep440.Parse(dep.Version); err != nil || !r.Specifiers.Contains(v, true) {
				problems = append(problems, fmt.Sprintf("%s requires %s, but %s %s is installed", via, line, dep.Name, dep.Version))
			}
			for _, x := range r.Extras {
				queue = append(queue, need{from: r.NormalizedName(), extra: pep508.NormalizeName(x)})
			}
		}
	}
	sort.Strings(problems)
	return problems, byBase
}

func sameVersion(a, b string) bool {
	va, err1 := pep440.Parse(a)
	vb, err2 := pep440.Parse(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return va.Equal(vb)
}
