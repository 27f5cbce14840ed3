// Package variants holds KTRDR's four images as data: for each, the extras
// and dependency groups of the project it installs and the torch flavour it
// gets. Everything that differs between the images is a field of Variant;
// nothing else in ktrdr-images knows KTRDR's image names.
//
// Pins turns a variant into the exact package set for one platform and
// Python version, using python/uvlock on the project's pyproject.toml and
// uv.lock. Later stages (the LLB graph, the installers, the probes) read the
// same table.
package variants

import (
	"fmt"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// Variant is one image of the application.
type Variant struct {
	// Name is the target name users select ("worker-cpu").
	Name string
	// Description is one line for `targets` listings.
	Description string
	// Extras of the project to install.
	Extras []string
	// Groups are the project's dependency groups to install.
	Groups []string
	// Torch is the torch flavour.
	Torch uvlock.Flavour
}

// The variant names.
const (
	BackendDev  = "backend-dev"
	BackendProd = "backend-prod"
	WorkerCPU   = "worker-cpu"
	WorkerGPU   = "worker-gpu"
)

// All returns the four variants, in a fixed order. Each call returns a fresh
// copy, so callers may modify what they get.
func All() []Variant {
	return []Variant{
		{
			Name:        BackendDev,
			Description: "development backend: every dependency incl. the dev group, CPU-only torch, code mounted at run time",
			Extras:      []string{"ml"},
			Groups:      []string{"dev"},
			Torch:       uvlock.FlavourCPU,
		},
		{
			Name:        BackendProd,
			Description: "production API backend: runtime dependencies only, no torch",
			Torch:       uvlock.FlavourNone,
		},
		{
			Name:        WorkerCPU,
			Description: "backtest/training worker with CPU-only torch (no CUDA, no nvidia-* wheels)",
			Extras:      []string{"ml"},
			Torch:       uvlock.FlavourCPU,
		},
		{
			Name:        WorkerGPU,
			Description: "training worker with CUDA torch and exactly one CUDA stack",
			Extras:      []string{"ml"},
			Torch:       uvlock.FlavourCUDA,
		},
	}
}

// Names returns the variant names in the order of All.
func Names() []string {
	var out []string
	for _, v := range All() {
		out = append(out, v.Name)
	}
	return out
}

// Lookup returns the variant with that name, or an error listing the valid
// names.
func Lookup(name string) (Variant, error) {
	for _, v := range All() {
		if v.Name == name {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("unknown variant %q: expected one of %s", name, strings.Join(Names(), ", "))
}

// Target is the environment an image is built for.
type Target struct {
	// Platform is an OCI platform string: linux/amd64 or linux/arm64.
	Platform string
	// Python is the interpreter version, "3.13" or "3.13.5".
	Python string
	// CUDAFromBase: the worker-gpu image's base provides CUDA, so the
	// nvidia-* wheels are left out.
	CUDAFromBase bool
	// CPUIndex overrides the index of CPU torch builds.
	CPUIndex string
}

// Defaults for Target.
const (
	DefaultPlatform = "linux/amd64"
	DefaultPython   = "3.13"
)

// Pins resolves the variant's exact package set for the target from the
// project's pyproject.toml and uv.lock.
func (v Variant) Pins(proj *pyproject.Project, lock *uvlock.Lock, t Target) (*uvlock.Resolution, error) {
	if t.Platform == "" {
		t.Platform = DefaultPlatform
	}
	if t.Python == "" {
		t.Python = DefaultPython
	}
	plat, err := pep508.ParsePlatform(t.Platform)
	if err != nil {
		return nil, fmt.Errorf("variant %s: option platform: %w", v.Name, err)
	}
	env, err := pep508.EnvironmentFor(plat, t.Python)
	if err != nil {
		return nil, fmt.Errorf("variant %s: option python: %w", v.Name, err)
	}
	res, err := uvlock.Resolve(proj, lock, uvlock.Request{
		Extras: v.Extras,
		Groups: v.Groups,
		Env:    env,
		Torch: uvlock.TorchOptions{
			Flavour:      v.Torch,
			CUDAFromBase: t.CUDAFromBase && v.Torch == uvlock.FlavourCUDA,
			CPUIndex:     t.CPUIndex,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("variant %s (%s, python %s): %w", v.Name, t.Platform, t.Python, err)
	}
	return res, nil
}
