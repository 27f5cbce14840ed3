package uvlock

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep440"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
)

// Check reports whether lock was made from proj, the way `uv lock --check`
// would refuse it: the root project must be locked, and every requirement of
// pyproject.toml (dependencies, each extra, each dependency group) must be in
// the root package's recorded metadata with the same extras and version
// specifier, and nothing more. The error names the first difference found and
// says to run `uv lock`.
func Check(proj *pyproject.Project, lock *Lock) error {
	root, err := lock.Root(proj.NormalizedName())
	if err != nil {
		return fmt.Errorf("%w (the project in %s is %q)", err, proj.Path, proj.Name)
	}
	stale := func(format string, args ...any) error {
		return fmt.Errorf("%s is out of date with %s: %s; run `uv lock` and commit the new %s",
			lock.Path, proj.Path, fmt.Sprintf(format, args...), FileName)
	}
	if proj.RequiresPython != "" && lock.RequiresPython != "" {
		a, errA := pep440.ParseSpecifiers(proj.RequiresPython)
		b, errB := pep440.ParseSpecifiers(lock.RequiresPython)
		if errA != nil {
			return fmt.Errorf("%s: requires-python %s: %w", proj.Path, pep440.Clip(proj.RequiresPython), errA)
		}
		if errB != nil {
			return fmt.Errorf("%s: requires-python %s: %w", lock.Path, pep440.Clip(lock.RequiresPython), errB)
		}
		if !a.Equal(b) {
			return stale("requires-python is %q in the project but %q in the lock", proj.RequiresPython, lock.RequiresPython)
		}
	}
	// Locks that predate [package.metadata] cannot be checked further.
	if len(root.Metadata.RequiresDist) == 0 && len(root.Metadata.RequiresDev) == 0 &&
		len(proj.Dependencies) > 0 {
		return stale("the root package %s records no requires-dist", root.ID())
	}

	// Sections of the project and of the lock metadata, keyed alike:
	// "" for dependencies, "extra:NAME" and "group:NAME".
	want := map[string][]pep508.Requirement{"": proj.Dependencies}
	for extra, reqs := range proj.OptionalDependencies {
		want["extra:"+extra] = reqs
	}
	for group, entries := range proj.DependencyGroups {
		var reqs []pep508.Requirement
		for _, e := range entries {
			if e.Requirement != nil {
				reqs = append(reqs, *e.Requirement)
			}
		}
		want["group:"+group] = reqs
	}
	have := map[string][]MetadataRequirement{}
	for _, m := range root.Metadata.RequiresDist {
		key := ""
		if extra, ok := extraOfMarker(m.Marker); ok {
			key = "extra:" + extra
		}
		have[key] = append(have[key], m)
	}
	for group, reqs := range root.Metadata.RequiresDev {
		have["group:"+group] = append(have["group:"+group], reqs...)
	}

	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		section := describeSection(key)
		pool := slices.Clone(have[key])
		for _, r := range want[key] {
			name := r.NormalizedName()
			idx, sameName := matchRequirement(pool, r)
			if idx < 0 {
				if sameName != nil {
					return stale("%s: %s is %q in %s but the lock was made for %q",
						section, name, requirementText(r), pyproject.FileName, metadataText(*sameName))
				}
				return stale("%s: %s is in %s but missing from the lock's root package %s",
					section, name, pyproject.FileName, root.Name)
			}
			pool = slices.Delete(pool, idx, idx+1)
		}
		// Groups may contain include-group entries, which uv expands in the
		// lock; only report leftovers for sections without includes.
		if len(pool) > 0 && !hasIncludes(proj, key) {
			return stale("%s: the lock's root package requires %s, which %s no longer lists",
				section, pool[0].Name, pyproject.FileName)
		}
	}
	for key := range have {
		if _, ok := want[key]; !ok && len(have[key]) > 0 {
			return stale("%s is in the lock but not in %s", describeSection(key), pyproject.FileName)
		}
	}
	return nil
}

func hasIncludes(proj *pyproject.Project, key string) bool {
	group, ok := strings.CutPrefix(key, "group:")
	if !ok {
		return false
	}
	for _, e := range proj.DependencyGroups[group] {
		if e.IncludeGroup != "" {
			return true
		}
	}
	return false
}

// matchRequirement finds the metadata entry equal to r (name, extras and
// specifier). When none is equal it returns -1 and, if one has r's name, that
// entry, so the error can show both.
func matchRequirement(pool []MetadataRequirement, r pep508.Requirement) (int, *MetadataRequirement) {
	var sameName *MetadataRequirement
	for i, m := range pool {
		if m.Name != r.NormalizedName() {
			continue
		}
		if sameName == nil {
			sameName = &pool[i]
		}
		if !sameExtras(m.Extras, r.Extras) {
			continue
		}
		spec, err := pep440.ParseSpecifiers(m.Specifier)
		if err != nil || !spec.Equal(r.Specifiers) {
			continue
		}
		return i, nil
	}
	return -1, sameName
}

func sameExtras(a, b []string) bool {
	norm := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = pep508.NormalizeName(x)
		}
		sort.Strings(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// extraOfMarker finds the extra a requires-dist marker is conditional on
// ("extra == 'ml'" or "sys_platform == 'linux' and extra == 'ml'").
func extraOfMarker(marker string) (string, bool) {
	for _, q := range []string{"'", `"`} {
		pre := "extra == " + q
		if i := strings.Index(marker, pre); i >= 0 {
			rest := marker[i+len(pre):]
			if j := strings.Index(rest, q); j >= 0 {
				return pep508.NormalizeName(rest[:j]), true
			}
		}
	}
	return "", false
}

func describeSection(key string) string {
	switch {
	case key == "":
		return "[project] dependencies"
	case strings.HasPrefix(key, "extra:"):
		return "extra " + strings.TrimPrefix(key, "extra:")
	default:
		return "dependency group " + strings.TrimPrefix(key, "group:")
	}
}

func requirementText(r pep508.Requirement) string {
	s := r.NormalizedName()
	if len(r.Extras) > 0 {
		s += "[" + strings.Join(r.Extras, ",") + "]"
	}
	return s + r.Specifiers.String()
}

func metadataText(m MetadataRequirement) string {
	s := m.Name
	if len(m.Extras) > 0 {
		s += "[" + strings.Join(m.Extras, ",") + "]"
	}
	return s + m.Specifier
}
