package world

import "github.com/ktrdr/ktrdr-images/variants"

// BuildOptions are the ktrdr-images options that point a build at this
// world, and nothing else: its python base (for every variant: worker-gpu
// takes CUDA from the locked nvidia-* wheels, the default), its uv image,
// its index and CPU torch index, and image names under registry/namespace.
// The installer is the default, uv. make images, the integration tests and
// the benchmark all build with them; tests of the other paths (the pip
// installer, worker-gpu on the CUDA base) change one option on top.
func (w *World) BuildOptions(namespace string) variants.Options {
	o := variants.DefaultOptions()
	o.PythonBase = w.PythonBase
	o.UVImage = w.UVImage
	o.UVVersion = w.UVVersion
	o.IndexURL = w.IndexURL
	o.CPUIndexURL = w.CPUIndexURL
	o.Registry = w.Registry + "/" + namespace
	return o
}
