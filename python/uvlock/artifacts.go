package uvlock

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep508"
)

// DefaultRegistry is the registry the lock took its packages from when no
// index was named for them: the one most registry packages come from (PyPI
// for a project locked against PyPI, a mirror's URL for one locked with
// `uv lock --index-url MIRROR`). Packages pinned to a named index (a CPU
// torch index in [tool.uv.sources]) are fewer and lose the count. "" when
// no package comes from a registry.
func (l *Lock) DefaultRegistry() string {
	count := map[string]int{}
	best := ""
	for _, p := range l.Packages {
		r := p.Source.Registry
		if r == "" {
			continue
		}
		count[r]++
		if count[r] > count[best] || (count[r] == count[best] && r < best) {
			best = r
		}
	}
	return best
}

// WheelTags are the parts of a wheel file name that say where it installs
// (PEP 427): python tags, ABI tags and platform tags, each possibly a
// dotted set ("py2.py3").
type WheelTags struct {
	Python, ABI, Platform []string
}

// ParseWheelName reads a wheel file name (the last part of a URL or path):
// NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl.
func ParseWheelName(file string) (WheelTags, error) {
	base := path.Base(file)
	if !strings.HasSuffix(base, ".whl") {
		return WheelTags{}, fmt.Errorf("%s is not a wheel file name (NAME-VERSION-PY-ABI-PLATFORM.whl)", base)
	}
	parts := strings.Split(strings.TrimSuffix(base, ".whl"), "-")
	if len(parts) != 5 && len(parts) != 6 {
		return WheelTags{}, fmt.Errorf("%s is not a wheel file name (NAME-VERSION-PY-ABI-PLATFORM.whl)", base)
	}
	n := len(parts)
	return WheelTags{
		Python:   strings.Split(parts[n-3], "."),
		ABI:      strings.Split(parts[n-2], "."),
		Platform: strings.Split(parts[n-1], "."),
	}, nil
}

// Compatible reports whether a wheel with these tags installs into CPython
// X.Y (python "3.13") on Linux with glibc for the machine of env
// (platform_machine: x86_64, aarch64): a py3/pyXY or cpXY tag no newer than
// the interpreter, an abi3 or none ABI (or cpXY's own for cpXY), and any,
// linux_MACHINE or manylinux*_MACHINE as the platform.
func (t WheelTags) Compatible(python, machine string) bool {
	major, minor, ok := splitPython(python)
	if !ok {
		return false
	}
	platOK := false
	for _, p := range t.Platform {
		if p == "any" || p == "linux_"+machine ||
			(strings.HasPrefix(p, "manylinux") && strings.HasSuffix(p, "_"+machine)) {
			platOK = true
		}
	}
	if !platOK {
		return false
	}
	for _, py := range t.Python {
		for _, abi := range t.ABI {
			if pythonABIOK(py, abi, major, minor) {
				return true
			}
		}
	}
	return false
}

func splitPython(v string) (int, int, bool) {
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

func pythonABIOK(py, abi string, major, minor int) bool {
	var impl string
	switch {
	case strings.HasPrefix(py, "py"):
		impl = "py"
	case strings.HasPrefix(py, "cp"):
		impl = "cp"
	default:
		return false
	}
	ver := py[2:]
	if ver == "" || ver[0]-'0' != byte(major) {
		return false
	}
	wantMinor := -1
	if len(ver) > 1 {
		m, err := strconv.Atoi(ver[1:])
		if err != nil {
			return false
		}
		wantMinor = m
	}
	switch abi {
	case "none":
		// py3, py313, cp313-none: pure, or built for that interpreter.
		return wantMinor == -1 || (impl == "py" && wantMinor <= minor) || wantMinor == minor
	case "abi3":
		return impl == "cp" && wantMinor <= minor
	default:
		// cp313-cp313: built for that interpreter's own ABI (not the
		// free-threaded cp313t).
		return impl == "cp" && wantMinor == minor && abi == "cp"+ver
	}
}

// ArtifactError is a pinned package that has locked artifacts, none of
// which installs on the target: no wheel for its platform and Python, and
// no sdist to build from.
type ArtifactError struct {
	Lock, Package, Version, Platform, Python string
	Wheels                                   []string
}

func (e *ArtifactError) Error() string {
	return fmt.Sprintf("%s: %s %s has no wheel for %s and CPython %s and no sdist to build one (its locked wheels: %s)",
		e.Lock, e.Package, e.Version, e.Platform, e.Python, strings.Join(e.Wheels, ", "))
}

// Chosen is the locked artifact an installer takes for a pin on a target:
// a compatible wheel, else the sdist it builds from.
type Chosen struct {
	// File is the artifact's file name.
	File string
	// Size is the size the lock records (0 when it records none).
	Size int64
	// Build is true for an sdist: the package is compiled on the target.
	Build bool
	// URL is where the lock says the artifact is (its url, else its path);
	// Hash the lock's hash of it ("sha256:...", "" when it records none).
	URL, Hash string
}

// ArtifactFor picks the artifact pin installs from on the target (CPython
// python, platform_machine machine): the first compatible wheel the lock
// lists, else its sdist. ok is false when the lock records nothing to pick
// from for this pin (a package from another index, such as a CPU torch, or
// a path or git source), or when nothing installs (see CheckArtifacts).
func ArtifactFor(pin Pin, python, machine string) (c Chosen, ok bool) {
	p := pin.Package
	if p == nil || pin.Index != p.Source.Registry {
		return Chosen{}, false
	}
	for _, w := range p.Wheels {
		file := artifactFile(w)
		if t, err := ParseWheelName(file); err == nil && t.Compatible(python, machine) {
			return Chosen{File: path.Base(file), Size: w.Size, URL: file, Hash: w.Hash}, true
		}
	}
	if p.Sdist != nil {
		file := artifactFile(*p.Sdist)
		return Chosen{File: path.Base(file), Size: p.Sdist.Size, Build: true, URL: file, Hash: p.Sdist.Hash}, true
	}
	return Chosen{}, false
}

// TargetHashes are the hashes of pin's artifacts that install on the target
// (CPython python, platform_machine machine): its compatible wheels and its
// sdist. An install step lists these, not every platform's, so that a
// change to the lock's wheels for another platform (an aarch64 wheel added
// or dropped) leaves this platform's steps as they were. A pin the lock
// records nothing for here keeps pin.Hashes.
func TargetHashes(pin Pin, python, machine string) []string {
	p := pin.Package
	if p == nil || pin.Index != p.Source.Registry {
		return pin.Hashes
	}
	out := artifactHashes(p, func(w Artifact) bool {
		t, err := ParseWheelName(artifactFile(w))
		return err == nil && t.Compatible(python, machine)
	})
	if len(out) == 0 {
		return pin.Hashes
	}
	return out
}

func artifactFile(a Artifact) string {
	switch {
	case a.URL != "":
		return a.URL
	case a.Path != "":
		return a.Path
	}
	return a.Filename
}

// CheckArtifacts checks that every pin of r can be installed on the target
// environment from what the lock records: a compatible wheel, or an sdist.
// Pins the lock records no artifact for (a lock written by hand, a path or
// git source, a package from another index such as a CPU torch) are not
// checked: there is nothing to check them against. needsBuild lists the
// pins that have only an sdist for the target, sorted as r.Pins is.
func (l *Lock) CheckArtifacts(r *Resolution, env pep508.Environment, platform string) (needsBuild []string, err error) {
	for _, pin := range r.Pins {
		p := pin.Package
		if p == nil || pin.Index != p.Source.Registry || (len(p.Wheels) == 0 && p.Sdist == nil) {
			continue
		}
		c, ok := ArtifactFor(pin, env.PythonVersion, env.PlatformMachine)
		if ok {
			if c.Build {
				needsBuild = append(needsBuild, p.Name)
			}
			continue
		}
		var names []string
		for _, w := range p.Wheels {
			names = append(names, path.Base(artifactFile(w)))
		}
		return nil, &ArtifactError{Lock: l.Path, Package: p.Name, Version: p.Version, Platform: platform, Python: env.PythonVersion, Wheels: names}
	}
	return needsBuild, nil
}
