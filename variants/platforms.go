package variants

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/python/pep508"
)

// KnownPlatforms are the platforms ktrdr-images builds for, in the order
// reports list them.
var KnownPlatforms = []string{"linux/amd64", "linux/arm64"}

// ParsePlatforms reads a list of platforms as --platform takes it
// ("linux/amd64,linux/arm64", spaces allowed): each normalized
// (linux/arm64/v8 is linux/arm64), duplicates dropped, in the order given.
// option names the flag or key in errors. An empty list is an error.
func ParsePlatforms(option, s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := pep508.ParsePlatform(f)
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", option, err)
		}
		n := platforms.Format(p)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("option %s: %q: expected a platform or a comma-separated list, like linux/amd64,linux/arm64", option, s)
	}
	return out, nil
}

// SupportedPlatforms are the known platforms the variant can be built for
// with these inputs and options: those its lock resolves on (worker-gpu's
// CUDA torch is locked for linux/amd64 only).
func SupportedPlatforms(in Inputs, o Options, v Variant) []string {
	var out []string
	for _, p := range KnownPlatforms {
		t := Target{Platform: p, Python: o.Python, CUDAFromBase: v.CUDABase && o.CUDABase != "", CPUIndex: o.CPUIndexURL, CUDAIndex: o.CUDAIndexURL}
		if _, err := v.Pins(in.Project, in.Lock, t); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// PlatformsHelp says which platforms each variant supports, for errors
// about a platform: "backend-dev: linux/amd64, linux/arm64; worker-gpu:
// linux/amd64".
func PlatformsHelp(in Inputs, o Options, vs []Variant) string {
	var parts []string
	for _, v := range vs {
		sup := SupportedPlatforms(in, o, v)
		s := "none"
		if len(sup) > 0 {
			s = strings.Join(sup, ", ")
		}
		parts = append(parts, v.Name+": "+s)
	}
	return strings.Join(parts, "; ")
}

// CheckPlatforms checks every variant against every platform before
// anything is built: an unknown platform, or a variant that cannot be
// built for one (its lock does not resolve there), is an error naming the
// option, the variant, the platform, why, and what each variant supports.
func CheckPlatforms(option string, in Inputs, o Options, vs []Variant, plats []string) error {
	for _, p := range plats {
		if _, err := pep508.ParsePlatform(p); err != nil {
			return fmt.Errorf("option %s: %w (supported, per variant: %s)", option, err, PlatformsHelp(in, o, vs))
		}
	}
	for _, v := range vs {
		for _, p := range plats {
			t := Target{Platform: p, Python: o.Python, CUDAFromBase: v.CUDABase && o.CUDABase != "", CPUIndex: o.CPUIndexURL, CUDAIndex: o.CUDAIndexURL}
			if _, err := v.Pins(in.Project, in.Lock, t); err != nil {
				sup := SupportedPlatforms(in, o, v)
				return fmt.Errorf("option %s: variant %s cannot be built for %s (it supports %s): %w", option, v.Name, p, orNone(sup), err)
			}
		}
	}
	return nil
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "no platform"
	}
	return strings.Join(xs, ", ")
}
