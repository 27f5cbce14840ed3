package pep508

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/python/pep440"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUnsupportedPlatform is wrapped by the errors EnvironmentFor and
// ParsePlatform return for a platform other than linux/amd64 or
// linux/arm64.
var ErrUnsupportedPlatform = errors.New("unsupported platform")

// ErrInvalidPython is wrapped by the error EnvironmentFor returns for a
// malformed Python version.
var ErrInvalidPython = errors.New("invalid Python version")

// Environment holds the values of the PEP 508 marker variables for one
// target interpreter, plus the extras that are active. Each field is named
// after the marker variable it supplies (OSName is os_name, and so on).
type Environment struct {
	// OSName is os_name (os.name), for example "posix".
	OSName string
	// SysPlatform is sys_platform (sys.platform), for example "linux".
	SysPlatform string
	// PlatformMachine is platform_machine (platform.machine()), for
	// example "x86_64" or "aarch64".
	PlatformMachine string
	// PlatformPythonImplementation is platform_python_implementation,
	// for example "CPython".
	PlatformPythonImplementation string
	// PlatformRelease is platform_release (platform.release()), the
	// kernel release; empty when unknown, as for an image built elsewhere.
	PlatformRelease string
	// PlatformSystem is platform_system (platform.system()), for example
	// "Linux".
	PlatformSystem string
	// PlatformVersion is platform_version (platform.version()); empty
	// when unknown.
	PlatformVersion string
	// PythonVersion is python_version, "X.Y" (for example "3.13").
	PythonVersion string
	// PythonFullVersion is python_full_version, "X.Y.Z" (for example
	// "3.13.5").
	PythonFullVersion string
	// ImplementationName is implementation_name, for example "cpython".
	ImplementationName string
	// ImplementationVersion is implementation_version; for CPython it
	// equals PythonFullVersion.
	ImplementationVersion string
	// Extras are the active extras tested by the "extra" marker
	// variable. They are compared after NormalizeName, so their spelling
	// does not matter.
	Extras []string
}

// WithExtras returns a copy of e whose active extras are exactly extras
// (replacing any that e had). e itself is not modified.
func (e Environment) WithExtras(extras ...string) Environment {
	e.Extras = append([]string(nil), extras...)
	return e
}

// value returns the value of a canonical marker variable other than
// "extra".
func (e Environment) value(variable string) string {
	switch variable {
	case "os_name":
		return e.OSName
	case "sys_platform":
		return e.SysPlatform
	case "platform_machine":
		return e.PlatformMachine
	case "platform_python_implementation":
		return e.PlatformPythonImplementation
	case "platform_release":
		return e.PlatformRelease
	case "platform_system":
		return e.PlatformSystem
	case "platform_version":
		return e.PlatformVersion
	case "python_version":
		return e.PythonVersion
	case "python_full_version":
		return e.PythonFullVersion
	case "implementation_name":
		return e.ImplementationName
	case "implementation_version":
		return e.ImplementationVersion
	}
	return ""
}

// EnvironmentFor returns the marker environment of CPython version python
// running on Linux on platform p.
//
// Only linux/amd64 (platform_machine "x86_64") and linux/arm64
// ("aarch64"; variant "" or "v8") are supported; p is normalized with
// containerd's platforms.Normalize first, so "x86_64" and "aarch64" are
// accepted as architecture names too. python is "X.Y" or "X.Y.Z":
// python_version is "X.Y" and python_full_version (and
// implementation_version) is "X.Y.Z", with Z = 0 when no micro version is
// given. platform_release and platform_version are left empty, since they
// describe the machine the image will run on, which is not known.
func EnvironmentFor(p ocispecs.Platform, python string) (Environment, error) {
	machine, err := platformMachine(p)
	if err != nil {
		return Environment{}, fmt.Errorf("%w %s: expected linux/amd64 or linux/arm64", ErrUnsupportedPlatform, pep440.Clip(platforms.Format(p)))
	}
	short, full, err := parsePython(python)
	if err != nil {
		return Environment{}, err
	}
	return Environment{
		OSName:                       "posix",
		SysPlatform:                  "linux",
		PlatformMachine:              machine,
		PlatformPythonImplementation: "CPython",
		PlatformSystem:               "Linux",
		PythonVersion:                short,
		PythonFullVersion:            full,
		ImplementationName:           "cpython",
		ImplementationVersion:        full,
	}, nil
}

// platformMachine maps a supported platform to its platform_machine.
func platformMachine(p ocispecs.Platform) (string, error) {
	n := platforms.Normalize(p)
	if n.OS == "linux" && n.Variant == "" {
		switch n.Architecture {
		case "amd64":
			return "x86_64", nil
		case "arm64":
			return "aarch64", nil
		}
	}
	return "", ErrUnsupportedPlatform
}

// parsePython splits "X.Y" or "X.Y.Z" into python_version and
// python_full_version.
func parsePython(s string) (short, full string, err error) {
	parts := strings.Split(s, ".")
	ok := len(parts) == 2 || len(parts) == 3
	for _, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.TrimLeft(p, "0123456789") != "" {
			ok = false
		}
	}
	if !ok {
		return "", "", fmt.Errorf("%w %s: expected X.Y or X.Y.Z (for example 3.13 or 3.13.5)", ErrInvalidPython, pep440.Clip(s))
	}
	short = parts[0] + "." + parts[1]
	if len(parts) == 2 {
		return short, short + ".0", nil
	}
	return short, s, nil
}

// ParsePlatform parses an OCI platform string such as "linux/amd64",
// "linux/arm64" or "linux/arm64/v8" with containerd's platforms.Parse and
// returns it normalized (platforms.Normalize; linux/arm64/v8 becomes
// linux/arm64 with an empty variant). As for EnvironmentFor, only
// linux/amd64 and linux/arm64 are accepted. Both the operating system and
// the architecture must be given: containerd would fill a missing one in
// from the host, which would make the result depend on where it runs.
func ParsePlatform(s string) (ocispecs.Platform, error) {
	if !strings.Contains(s, "/") {
		return ocispecs.Platform{}, fmt.Errorf("%w %s: expected linux/amd64 or linux/arm64", ErrUnsupportedPlatform, pep440.Clip(s))
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("%w %s: expected linux/amd64 or linux/arm64: %w", ErrUnsupportedPlatform, pep440.Clip(s), err)
	}
	p = platforms.Normalize(p)
	if _, err := platformMachine(p); err != nil {
		return ocispecs.Platform{}, fmt.Errorf("%w %s: expected linux/amd64 or linux/arm64", ErrUnsupportedPlatform, pep440.Clip(s))
	}
	return p, nil
}
