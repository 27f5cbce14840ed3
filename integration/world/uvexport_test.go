package world

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
)

// uvExportCase is one set of extras and groups the images of an example
// install, with the images that install it.
type uvExportCase struct {
	extras, groups []string
	images         []variants.Variant
}

func (c uvExportCase) name() string {
	s := "extras=" + strings.Join(c.extras, "+")
	if len(c.extras) == 0 {
		s = "extras=none"
	}
	if len(c.groups) > 0 {
		s += ",groups=" + strings.Join(c.groups, "+")
	}
	return s
}

// command is the uv export that gives the same set as c: the lock as it
// is (--frozen), names and versions only, without the project itself, and
// exactly c's groups (--no-default-groups, as the uv installer's own uv
// sync has it; for these projects, whose only default group is dev, the
// same as --no-dev when c has no groups).
func (c uvExportCase) command() string {
	cmd := "uv export --frozen --format requirements.txt --no-hashes --no-header --no-annotate --no-emit-project --no-default-groups"
	for _, e := range c.extras {
		cmd += " --extra " + shellQuote(e)
	}
	for _, g := range c.groups {
		cmd += " --group " + shellQuote(g)
	}
	return cmd
}

// uvExportCases groups the images of spec by the extras and groups they
// install, in the spec's order.
func uvExportCases(spec *variants.Spec) []uvExportCase {
	var out []uvExportCase
	index := map[string]int{}
	for _, v := range spec.Variants {
		c := uvExportCase{extras: sortedNormalized(v.Extras), groups: sortedNormalized(v.Groups)}
		k := c.name()
		if i, ok := index[k]; ok {
			out[i].images = append(out[i].images, v)
			continue
		}
		c.images = []variants.Variant{v}
		index[k] = len(out)
		out = append(out, c)
	}
	return out
}

func sortedNormalized(xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, pep508.NormalizeName(x))
	}
	sort.Strings(out)
	return out
}

// uvExportLine is one requirement line of uv export's output.
type uvExportLine struct {
	text, name, version string
	marker              pep508.Marker
}

// parseUVExport reads uv export's requirements.txt: one "name==version"
// per line, with a PEP 508 marker after ";" when the package is not needed
// everywhere. Anything else (an option line, a URL or a path requirement,
// a specifier other than one ==) is an error: the comparison would not
// mean what it says.
func parseUVExport(data []byte) ([]uvExportLine, error) {
	var out []uvExportLine
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "-") {
			return nil, fmt.Errorf("line %d: %q: an option line, not a pinned requirement", i+1, line)
		}
		r, err := pep508.ParseRequirement(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		spec := r.Specifiers.String()
		if r.URL != "" || !strings.HasPrefix(spec, "==") || strings.Contains(spec, ",") || strings.Contains(spec, "*") {
			return nil, fmt.Errorf("line %d: %q is not one name==version", i+1, line)
		}
		out = append(out, uvExportLine{text: line, name: r.NormalizedName(), version: strings.TrimPrefix(spec, "=="), marker: r.Marker})
	}
	return out, nil
}

// uvExportPins keeps the lines whose marker holds in env and returns them
// as name → version, failing on a name with two applicable lines; it also
// returns the lines left out, and the lines kept that carry a marker.
func uvExportPins(lines []uvExportLine, env pep508.Environment) (pins map[string]string, skipped, kept []string, err error) {
	pins = map[string]string{}
	for _, l := range lines {
		if !l.marker.Evaluate(env) {
			skipped = append(skipped, l.text)
			continue
		}
		if v, dup := pins[l.name]; dup {
			return nil, nil, nil, fmt.Errorf("uv exports two versions of %s that both apply here: %s and %s", l.name, v, l.version)
		}
		pins[l.name] = l.version
		if !l.marker.IsEmpty() {
			kept = append(kept, l.text)
		}
	}
	return pins, skipped, kept, nil
}

// lockedPins is the set an image's resolution takes from the lock: its
// pins and what its torch flavour dropped (the CUDA-only packages a CPU
// build leaves out: ours to leave out, but locked for this environment).
// Versions are the pins' own, with one exception, the CPU flavour's own
// rename: it installs torch X+cpu from the CPU index in place of the
// locked X (uvlock.TorchOptions, "lock graph" method), which counts as
// the locked X; any other pin whose version is not its lock entry's is
// compared as it is, and so shows as different.
func lockedPins(res *uvlock.Resolution) (map[string]string, []string) {
	out := map[string]string{}
	var renamed []string
	for _, set := range [][]uvlock.Pin{res.Pins, res.Dropped} {
		for _, p := range set {
			version := p.Version
			if q := p.Package; q != nil && p.Version != q.Version && res.Flavour.Flavour == uvlock.FlavourCPU &&
				p.Name == uvlock.DefaultTorchPackage && p.Version == q.Version+"+"+uvlock.DefaultCPULocalVersion && p.Index != q.Source.Registry {
				version = q.Version
				renamed = append(renamed, q.Name+"=="+q.Version+" → "+p.Requirement()+" from "+p.Index)
			}
			out[pep508.NormalizeName(p.Name)] = version
		}
	}
	return out, renamed
}

// pinDiff describes how ours differs from uv's, one package a line; empty
// when they are the same.
func pinDiff(uv, ours map[string]string) string {
	names := map[string]bool{}
	for n := range uv {
		names[n] = true
	}
	for n := range ours {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, n := range sorted {
		u, inUV := uv[n]
		o, inOurs := ours[n]
		switch {
		case inUV && !inOurs:
			fmt.Fprintf(&b, "  missing    %s==%s (uv exports it, our resolution lacks it)\n", n, u)
		case !inUV && inOurs:
			fmt.Fprintf(&b, "  extra      %s==%s (our resolution has it, uv does not export it)\n", n, o)
		case u != o:
			fmt.Fprintf(&b, "  different  %s: uv %s, ours %s\n", n, u, o)
		}
	}
	return b.String()
}

func orNothing(xs []string) string {
	if len(xs) == 0 {
		return "nothing"
	}
	return strings.Join(xs, " | ")
}

func pinList(m map[string]string) string {
	var xs []string
	for n, v := range m {
		xs = append(xs, n+"=="+v)
	}
	sort.Strings(xs)
	return strings.Join(xs, " ")
}

// For each example (examples/ktrdr with KTRDR's default spec,
// examples/signals with its own [tool.ktrdr-images]) and each set of
// extras and groups its images install, the packages our resolution of
// the lock gives an image (variants.Variant.Pins for linux/amd64, CPython
// 3.13, as the images are built) are the ones the real uv 0.9.17 exports
// from the same lock for that environment: `uv export --frozen` run in a
// trixie step of the world, its PEP 508 markers evaluated with
// python/pep508. Name and version must match exactly, package for
// package.
func TestPinsMatchUVExport(t *testing.T) {
	w := ForTest(t)
	start := time.Now()
	defer func() { t.Logf("took %s", time.Since(start).Round(100*time.Millisecond)) }()
	target := variants.Target{Platform: variants.DefaultPlatform, Python: variants.DefaultPython}
	plat, err := pep508.ParsePlatform(target.Platform)
	if err != nil {
		t.Fatal(err)
	}
	env, err := pep508.EnvironmentFor(plat, target.Python)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("environment: %s, CPython %s (platform_machine %s, python_full_version %s)", target.Platform, target.Python, env.PlatformMachine, env.PythonFullVersion)
	for _, app := range []string{"ktrdr", "signals"} {
		t.Run(app, func(t *testing.T) {
			src := filepath.Join("..", "..", "examples", app)
			proj, lock, err := uvlock.LoadProject(src)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := variants.LoadSpec(proj, lock)
			if err != nil {
				t.Fatal(err)
			}
			cases := uvExportCases(spec)

			// One step runs every export; each writes its output, its
			// stderr and its exit status under /work/export.
			script := "mkdir -p export\nuv --version > export/version\nuv export --help > export/help\n"
			for i, c := range cases {
				script += fmt.Sprintf("if %s > export/%d.txt 2> export/%d.err; then echo 0 > export/%d.rc; else echo $? > export/%d.rc; fi\n", c.command(), i, i, i, i)
			}
			out := t.TempDir()
			var log bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			stepStart := time.Now()
			if err := w.UVRun(ctx, src, []string{"pyproject.toml", "uv.lock"}, script, out, &log); err != nil {
				t.Fatalf("running uv export in the world: %v\n%s", err, log.String())
			}
			version, _ := os.ReadFile(filepath.Join(out, "export", "version"))
			t.Logf("%s: uv export step took %s", strings.TrimSpace(string(version)), time.Since(stepStart).Round(100*time.Millisecond))
			if !strings.HasPrefix(string(version), "uv "+UVVersion+" ") {
				t.Fatalf("the world's uv says %q, want uv %s", version, UVVersion)
			}
			help, _ := os.ReadFile(filepath.Join(out, "export", "help"))
			for _, f := range []string{"--frozen", "--format", "--no-hashes", "--no-header", "--no-annotate", "--no-emit-project", "--no-default-groups", "--extra", "--group"} {
				if !regexp.MustCompile(`(?m)(^|[\s,])` + regexp.QuoteMeta(f) + `([\s=<,]|$)`).Match(help) {
					t.Errorf("uv export --help does not list %s", f)
				}
			}

			for i, c := range cases {
				t.Run(c.name(), func(t *testing.T) {
					read := func(ext string) []byte {
						b, _ := os.ReadFile(filepath.Join(out, "export", fmt.Sprintf("%d.%s", i, ext)))
						return b
					}
					if rc := strings.TrimSpace(string(read("rc"))); rc != "0" {
						t.Fatalf("%s exited %s:\n%s", c.command(), rc, read("err"))
					}
					lines, err := parseUVExport(read("txt"))
					if err != nil {
						t.Fatalf("%s: %v\n%s", c.command(), err, read("txt"))
					}
					uvPins, skipped, kept, err := uvExportPins(lines, env)
					if err != nil {
						t.Fatalf("%s: %v", c.command(), err)
					}
					t.Logf("%s: %d lines, %d for this environment; left out by their markers: %s; kept by their markers: %d (%s)",
						c.command(), len(lines), len(uvPins), orNothing(skipped), len(kept), orNothing(kept))
					if len(uvPins) == 0 {
						t.Fatalf("%s exported nothing for this environment:\n%s", c.command(), read("txt"))
					}
					for _, v := range c.images {
						res, err := v.Pins(proj, lock, target)
						if err != nil {
							t.Errorf("image %s: %v", v.Name, err)
							continue
						}
						ours, renamed := lockedPins(res)
						var dropped []string
						for _, p := range res.Dropped {
							dropped = append(dropped, p.Requirement())
						}
						t.Logf("image %s (torch %s, %s): %d pins; its flavour left out %d (%s) and renamed %d (%s)", v.Name, res.Flavour.Flavour, res.Flavour.Method,
							len(res.Pins), len(res.Dropped), orNothing(dropped), len(renamed), orNothing(renamed))
						if d := pinDiff(uvPins, ours); d != "" {
							t.Errorf("image %s: our pins (extras %v, groups %v, %s python %s) differ from %s:\n%s\nuv:   %s\nours: %s",
								v.Name, c.extras, c.groups, target.Platform, target.Python, c.command(), d, pinList(uvPins), pinList(ours))
						}
					}
				})
			}
		})
	}
}
