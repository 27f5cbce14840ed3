package probe

import (
	"fmt"
	"sort"
	"strings"
)

// cudaCopiesPy finds every copy of every CUDA library under ROOT (the
// image's /) and prints, as JSON, each library's distinct copies. A
// library is a soname stem (libcublasLt, libcudnn_ops, libnvrtc-builtins)
// of the CUDA runtime, math libraries, cuDNN, NCCL, NVRTC, nvJitLink,
// CUPTI, NVTX and cuFile. Symlinks are followed to the file they name;
// files of one stem in one directory with the same size and leading bytes
// are one copy (a wheel holds no symlinks, so libcudart.so.12 and
// libcudart.so.12.4.127 may both be regular files there); any other file
// of the stem, in another directory or with other contents, is another
// copy, the sign of a second CUDA stack. Triton's own CUPTI (under
// triton/backends/nvidia/lib/, for its profiler, loaded by path and never
// by torch) is triton's private copy, not a stack, and is left out.
const cudaCopiesPy = `
import hashlib, json, os, re, sys
CUDA_LIB = re.compile(r"^(libcudart|libcublas|libcublasLt|libcudnn[A-Za-z0-9_]*|libcufft|libcufftw|libcurand|libcusolver|libcusolverMg|libcusparse|libcusparseLt|libnccl|libnvrtc|libnvrtc-builtins|libnvJitLink|libcupti|libnvToolsExt|libnvtx3interop|libcufile|libcufile_rdma|libnvperf_host|libnvperf_target|libpcsamplingutil|libcheckpoint)\.so(\.[0-9.]+)?$")
PRIVATE = re.compile(r"/triton/backends/nvidia/lib/")
def cuda_copies(root):
    dev = os.stat(root).st_dev
    found = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if os.lstat(os.path.join(d, x)).st_dev == dev and not (d == root and x in ("proc", "sys", "dev"))]
        for f in files:
            m = CUDA_LIB.match(f)
            if not m:
                continue
            p = os.path.realpath(os.path.join(d, f))
            if not os.path.isfile(p) or PRIVATE.search(p):
                continue
            found.setdefault(m.group(1), set()).add(p)
    out = {}
    for stem, paths in found.items():
        seen = {}
        for p in sorted(paths):
            with open(p, "rb") as fh:
                head = hashlib.sha256(fh.read(1 << 16)).hexdigest()
            seen.setdefault((os.path.dirname(p), os.path.getsize(p), head), p)
        out[stem] = sorted(seen.values())
    return out
`

// duplicateCUDALibraries reports, sorted, every CUDA library of copies
// (cudaCopiesPy's output) found more than once, with where.
func duplicateCUDALibraries(copies map[string][]string) error {
	var dups []string
	for lib, paths := range copies {
		if len(paths) > 1 {
			dups = append(dups, fmt.Sprintf("%s at %s", lib, strings.Join(paths, " and ")))
		}
	}
	if len(dups) == 0 {
		return nil
	}
	sort.Strings(dups)
	return fmt.Errorf("two CUDA stacks: %s", strings.Join(dups, "; "))
}

// cudaLibraryNames lists the libraries of copies, sorted.
func cudaLibraryNames(copies map[string][]string) []string {
	var names []string
	for lib := range copies {
		names = append(names, lib)
	}
	sort.Strings(names)
	return names
}
