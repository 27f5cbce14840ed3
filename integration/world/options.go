package world

import "github.com/ktrdr/ktrdr-images/variants"

// BuildOptions are the ktrdr-images options that point a build at this
// world: its base images (worker-gpu on the CUDA base), its index for every
// package and its CPU and CUDA torch indexes, the pip installer (no uv
// binary can be had here), and image names under registry/namespace.
// make images, the integration tests and the benchmark all build with them.
func (w *World) BuildOptions(namespace string) variants.Options {
	o := variants.DefaultOptions()
	o.PythonBase = w.PythonBase
	o.CUDABase = w.CUDABase
	o.Installer = "pip"
	o.IndexURL = w.IndexURL
	o.CPUIndexURL = w.CPUIndexURL
	o.CUDAIndexURL = w.CUDAIndexURL
	o.Registry = w.Registry + "/" + namespace
	return o
}
