package engine

import (
	"errors"
	"github.com/ktrdr/ktrdr-images/variants"
	"strings"
	"testing"
)

func TestInsecureAllows(t *testing.T) {
	f := Facts{Insecure: []string{"127.0.0.0/8", "registry.local:5000"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000":      true,
		"127.0.0.1":           true,
		"registry.local:5000": true,
		"registry.local:5001": false,
		"10.0.0.1:5000":       false,
	} {
		if got := f.InsecureAllows(host); got != want {
			t.Errorf("InsecureAllows(%s) = %v, want %v", host, got, want)
		}
	}
}

// The message engine 20.10's BuildKit gives for our graph (measured).
const engineMessage = `ERROR: failed to build: failed to solve: rpc error: code = Unknown desc = failed to solve with frontend dockerfile.v0: failed to solve with frontend gateway.v0: rpc error: code = Unknown desc = variant backend-prod: requested experimental feature diffop  is not supported by build server, please update docker`

func TestCapFromEngineMessage(t *testing.T) {
	m := capRE.FindStringSubmatch(engineMessage)
	if m == nil || m[1] != "diffop" {
		t.Fatalf("got %q", m)
	}
}

func TestFourImages(t *testing.T) {
	v := &verifier{Config: Config{Variants: []string{"backend-dev", "backend-prod", "worker-cpu", "worker-gpu"}}}
	out := `ktrdr-backend                            dev       0c5c0e3c1d7a   56 years ago   957MB
ktrdr-backend                            prod      6b1b3a7d0e2f   56 years ago   238MB
127.0.0.1:5000/ktrdr/ktrdr-worker-cpu    latest    9d7c1c0a2b3e   56 years ago   907MB
ktrdr-worker-cpu                         test      9d7c1c0a2b3e   56 years ago   907MB
ktrdr-worker-gpu                         test      1a2b3c4d5e6f   56 years ago   3.84GB
`
	if verdict, detail := v.fourImages(out, nil); verdict != Pass {
		t.Errorf("%s: %s", verdict, detail)
	}
	missing := strings.Replace(out, "ktrdr-worker-gpu                         test", "ktrdr-worker-gpu                         latest", 1)
	if verdict, detail := v.fourImages(missing, nil); verdict != Fail || !strings.Contains(detail, "ktrdr-worker-gpu:test") {
		t.Errorf("%s: %s", verdict, detail)
	}
}

func TestGPUImport(t *testing.T) {
	out := "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory"
	if verdict, detail := gpuImport(out, errors.New("exit status 1")); verdict != Differs || !strings.Contains(detail, "libcudnn.so.9") {
		t.Errorf("%s: %s", verdict, detail)
	}
	if verdict, _ := gpuImport("ModuleNotFoundError: No module named 'torch'", errors.New("exit status 1")); verdict != Fail {
		t.Errorf("a missing torch is %s, want FAIL", verdict)
	}
}

// TestSizeVerdict: a size verdict depends on the size: DIFFERS only as far
// as the measured reason explains, FAIL past it or below the seed's range.
func TestSizeVerdict(t *testing.T) {
	for _, c := range []struct {
		variant string
		n       int64
		want    Verdict
	}{
		{variants.BackendProd, 231e6, Pass},
		{variants.BackendProd, 400e6, Fail},
		{variants.BackendProd, 150e6, Fail},
		{variants.WorkerCPU, 450e6, Pass},
		{variants.WorkerCPU, 894e6, Differs},
		{variants.WorkerCPU, 2e9, Fail},
		{variants.BackendDev, 943e6, Differs},
		{variants.BackendDev, 1.2e9, Fail},
		{variants.WorkerGPU, 3.87e9, Differs},
		{variants.WorkerGPU, 3.2e9, Pass},
		{variants.WorkerGPU, 6e9, Fail},
	} {
		if got, detail := sizeVerdict(c.variant, c.n, "x"); got != c.want {
			t.Errorf("%s at %d bytes: %s (%s), want %s", c.variant, c.n, got, detail, c.want)
		}
	}
}
