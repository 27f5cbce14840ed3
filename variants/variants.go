// Package variants holds an application's images as data: for each, the
// extras and dependency groups of the project it installs, the torch
// flavour, the directories it copies, its port, health check and command.
// Everything that differs between the images is a field of Variant; nothing
// else in ktrdr-images knows an application's image names.
//
// The images are declared in the project's pyproject.toml, in a
// [tool.ktrdr-images] table (spec.go: LoadSpec); a project without one gets
// KTRDR's four, which are that same table embedded (ktrdr.toml,
// DefaultSpec).
//
// Pins turns a variant into the exact package set for one platform and
// Python version (python/uvlock). AssignLayers (layers.go) splits those pins
// into package layers by the sizes the lock records, and Graphs (graph.go)
// composes the helpers of package llb into the LLB graph of each requested
// variant, sharing the builder and every package layer with the same pins
// between variants, under the Options a platform team may override
// (options.go).
package variants

import (
	"fmt"
	"strconv"

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

	// Image is the default image name (repository:tag) before the registry.
	Image string
	// CUDABase: the image is built on Options.CUDABase when that is set
	// (the nvidia-* wheels are then left out).
	CUDABase bool
	// Copy are the context paths copied into the app dir.
	Copy []string
	// InstallProject installs the project itself (no: code is mounted at
	// run time).
	InstallProject bool
	// Port the app listens on; HealthPath is its health endpoint.
	Port       int
	HealthPath string
	// Launcher starts App (module:attr) as an ASGI server on Port.
	Launcher []string
	App      string
	// ExtraArgs follow the host and port arguments.
	ExtraArgs []string
	// Cmd, when set, is the image's command as it is (no app, host or
	// port added): a worker without a port, say.
	Cmd []string
	// Check is a command that must succeed in the image: its probe, and
	// its HEALTHCHECK when it has no health path.
	Check []string
	// Env are NAME=VALUE pairs added to the image's env.
	Env []string
	// Absent are app-dir paths that must not be in the image (what the
	// context's .dockerignore keeps out).
	Absent []string
	// Volumes are declared in the image config.
	Volumes []string
	// RunMounts are context paths mounted into the app dir at run time
	// (the dev image's code); the probes mount them read-only.
	RunMounts []string
	// HealthExpect are key/values the health endpoint's JSON must have.
	HealthExpect map[string]any
	// Tools are commands that must run in the image (the dev tools).
	Tools [][]string
}

// Command is the image's command: Cmd when set, else launcher, app, host,
// port, extra args.
func (v Variant) Command(app string, port int) []string {
	if len(v.Cmd) > 0 {
		return append([]string{}, v.Cmd...)
	}
	cmd := append([]string{}, v.Launcher...)
	cmd = append(cmd, app, "--host", "0.0.0.0", "--port", strconv.Itoa(port))
	return append(cmd, v.ExtraArgs...)
}

// The names of KTRDR's variants (the default spec).
const (
	BackendDev  = "backend-dev"
	BackendProd = "backend-prod"
	WorkerCPU   = "worker-cpu"
	WorkerGPU   = "worker-gpu"
)

// All returns KTRDR's four variants (DefaultSpec), in a fixed order. Each
// call returns a fresh copy, so callers may modify what they get.
func All() []Variant { return DefaultSpec().Variants }

// Names returns the default spec's variant names in the order of All.
func Names() []string { return DefaultSpec().Names() }

// Lookup returns the default spec's variant with that name, or an error
// listing the valid names.
func Lookup(name string) (Variant, error) { return DefaultSpec().Lookup(name) }

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
	// CUDAIndex, when set, serves worker-gpu's torch (see
	// uvlock.TorchOptions.CUDAIndex).
	CUDAIndex string
	// LockIndex is the lock's default registry (uvlock.Lock.DefaultRegistry):
	// its packages install from the installer's default index.
	LockIndex string
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
			CUDAIndex:    t.CUDAIndex,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("variant %s (%s, python %s): %w", v.Name, t.Platform, t.Python, err)
	}
	// What the lock records must install here: a wheel for this platform
	// and Python, or an sdist. Found now, before any build step runs.
	if _, err := lock.CheckArtifacts(res, env, t.Platform); err != nil {
		return nil, fmt.Errorf("variant %s (%s, python %s): %w", v.Name, t.Platform, t.Python, err)
	}
	// Each install step requires the hashes of what installs here only.
	for i := range res.Pins {
		res.Pins[i].Hashes = uvlock.TargetHashes(res.Pins[i], env.PythonVersion, env.PlatformMachine)
	}
	return res, nil
}
