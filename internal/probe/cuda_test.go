package probe

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCUDACopies runs cudaCopiesPy on root with the host's python3.
func runCUDACopies(t *testing.T, root string) map[string][]string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on this machine: the CUDA copies finder runs in the images' python")
	}
	out, err := exec.Command(py, "-c", cudaCopiesPy+"\nimport json, sys\nprint(json.dumps(cuda_copies(sys.argv[1])))", root).CombinedOutput()
	if err != nil {
		t.Fatalf("cuda_copies: %v\n%s", err, out)
	}
	var copies map[string][]string
	if err := json.Unmarshal(out, &copies); err != nil {
		t.Fatalf("cuda_copies printed %q: %v", out, err)
	}
	return copies
}

func write(t *testing.T, root, rel, content string) string {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCUDACopies: one copy per library whatever the symlinks and the
// soname files a wheel holds as regular files; a second copy anywhere
// else, or with other contents, is named with both paths; every CUDA
// library is looked at, not six.
func TestCUDACopies(t *testing.T) {
	root := t.TempDir()
	wheel := "app/.venv/lib/python3.13/site-packages/nvidia"
	// A wheel: both soname files as regular files, same bytes.
	write(t, root, wheel+"/cuda_runtime/lib/libcudart.so.12", "cudart 12.4")
	write(t, root, wheel+"/cuda_runtime/lib/libcudart.so.12.4.127", "cudart 12.4")
	// Debian's layout: one file, symlinks to it.
	real := write(t, root, "usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5", "nccl")
	os.Symlink(filepath.Base(real), filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnccl.so.2"))
	os.Symlink("libnccl.so.2", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libnccl.so"))
	write(t, root, wheel+"/cusparselt/lib/libcusparseLt.so.0", "cusparselt")
	write(t, root, "usr/lib/x86_64-linux-gnu/libz.so.1", "not CUDA")
	// Triton's private CUPTI beside the nvidia-cuda-cupti wheel's.
	write(t, root, wheel+"/cuda_cupti/lib/libcupti.so.12", "cupti 12.4")
	write(t, root, "app/.venv/lib/python3.13/site-packages/triton/backends/nvidia/lib/cupti/libcupti.so.12", "triton's cupti")
	copies := runCUDACopies(t, root)
	if err := duplicateCUDALibraries(copies); err != nil {
		t.Errorf("one copy of each, found: %v", err)
	}
	if got := strings.Join(cudaLibraryNames(copies), " "); got != "libcudart libcupti libcusparseLt libnccl" {
		t.Errorf("libraries found: %s, want libcudart libcupti libcusparseLt libnccl", got)
	}

	// A second stack: libcudart from a CUDA base too, and a second
	// libcusparseLt in the same directory with other bytes.
	other := write(t, root, "usr/local/cuda/lib64/libcudart.so.12.1.105", "cudart 12.1")
	write(t, root, wheel+"/cusparselt/lib/libcusparseLt.so.0.6.2", "cusparselt 0.6.2")
	err := duplicateCUDALibraries(runCUDACopies(t, root))
	if err == nil {
		t.Fatal("two copies of libcudart and of libcusparseLt passed")
	}
	for _, want := range []string{"libcudart at ", other, "libcusparseLt at "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
}
