package engine

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/variants"
)

// seed runs the seed's E2E verification commands and its tasks' smoke
// tests, verbatim, on the images the seed's names now point at.
func (v *verifier) seed(ctx context.Context) {
	v.begin("the seed's E2E validation (M3-split-dockerfiles.md), verbatim")
	v.sh(ctx, time.Minute, "docker images | grep ktrdr", v.fourImages)
	torchCheck := `python -c "import torch; print(f'torch OK, cuda={torch.cuda.is_available()}')"`
	if v.has(variants.BackendDev) {
		v.sh(ctx, 5*time.Minute, "docker run --rm ktrdr-backend:dev "+torchCheck, prints("torch OK, cuda=False"))
	}
	if v.has(variants.BackendProd) {
		v.sh(ctx, 5*time.Minute, `docker run --rm ktrdr-backend:prod python -c "import torch" && echo "FAIL" || echo "SUCCESS: no torch in prod"`, prints("SUCCESS: no torch in prod"))
	}
	if v.has(variants.WorkerCPU) {
		v.sh(ctx, 5*time.Minute, "docker run --rm ktrdr-worker-cpu:test "+torchCheck, prints("torch OK, cuda=False"))
	}
	if v.has(variants.WorkerGPU) {
		v.sh(ctx, 5*time.Minute, "docker run --rm ktrdr-worker-gpu:test "+torchCheck, gpuImport)
		// What can be checked without importing torch: its CUDA build, by
		// its files (torch/version.py, libtorch_cuda.so).
		v.sh(ctx, 5*time.Minute, `docker run --rm ktrdr-worker-gpu:test python -c "import glob, importlib.util, os; d = os.path.dirname(importlib.util.find_spec('torch').origin); ns = {}; exec(open(os.path.join(d, 'version.py')).read(), ns); print('torch', ns['__version__'], 'cuda', ns['cuda'], [os.path.basename(p) for p in glob.glob(os.path.join(d, 'lib', 'libtorch_cuda.so*'))])"`,
			func(out string, err error) (Verdict, string) {
				m := regexp.MustCompile(`torch (\S+) cuda (\S+) \['(libtorch_cuda\.so[^']*)'`).FindStringSubmatch(out)
				if err != nil || m == nil || m[2] == "None" {
					return Fail, "expected torch/version.py to give a CUDA version and torch/lib/libtorch_cuda.so* to exist"
				}
				return Pass, fmt.Sprintf("torch %s is the CUDA %s build, with %s (read from its files, without importing it)", m[1], m[2], m[3])
			})
	}

	v.begin("the seed's task smoke tests, verbatim")
	if v.has(variants.BackendProd) {
		v.sh(ctx, 5*time.Minute, `docker run --rm ktrdr-backend:prod python -c "import torch" 2>&1 | grep -q "No module" && echo "SUCCESS"`, prints("SUCCESS"))
		v.gone(ctx, "test-backend")
		seedAPI := "docker run --rm -d --name test-backend ktrdr-backend:prod\nsleep 5\n" +
			`docker exec test-backend curl -s http://localhost:8000/api/v1/health | grep -q "healthy" && echo "SUCCESS"` + "\ndocker stop test-backend"
		v.sh(ctx, 2*time.Minute, seedAPI, func(out string, err error) (Verdict, string) {
			if strings.Contains(out, "SUCCESS") {
				return Pass, "the API answers its health endpoint"
			}
			return Differs, `no SUCCESS: the example app's /api/v1/health answers {"status":"ok","service":"ktrdr-api"} (examples/ktrdr/README.md), without the word "healthy" the seed greps for KTRDR's; the next command checks the example's answer`
		})
		v.gone(ctx, "test-backend")
		v.sh(ctx, 2*time.Minute, "docker run --rm -d --name test-backend ktrdr-backend:prod\nsleep 5\n"+
			`docker exec test-backend curl -s http://localhost:8000/api/v1/health | grep -q '"status":"ok"' && echo "SUCCESS"`+"\ndocker stop test-backend", prints("SUCCESS"))
	}
	cudaFalse := `python -c "import torch; print(f'cuda={torch.cuda.is_available()}')" | grep -q "cuda=False" && echo "SUCCESS"`
	if v.has(variants.WorkerCPU) {
		v.sh(ctx, 5*time.Minute, "docker run --rm ktrdr-worker-cpu:test "+cudaFalse, prints("SUCCESS"))
	}
	if v.has(variants.WorkerGPU) {
		v.sh(ctx, 5*time.Minute, `docker run --rm ktrdr-worker-gpu:test python -c "import torch; print('torch OK')"`, gpuImport)
	}
	if v.has(variants.BackendDev) {
		v.sh(ctx, 5*time.Minute, "docker run --rm ktrdr-backend:dev "+cudaFalse, prints("SUCCESS"))
	}
	for _, n := range v.Variants {
		v.sh(ctx, time.Minute, fmt.Sprintf(`docker images %s --format "{{.Size}}"`, SeedNames[n]), v.sizeJudge(n))
	}
}

// fourImages judges docker images | grep ktrdr: every seed name is listed
// with a size.
func (v *verifier) fourImages(out string, err error) (Verdict, string) {
	if err != nil {
		return Fail, err.Error()
	}
	var missing []string
	for _, n := range v.Variants {
		repo, tag, _ := strings.Cut(SeedNames[n], ":")
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(repo) + `\s+` + regexp.QuoteMeta(tag) + `\s+\S+\s+.*\s[0-9.]+[kMG]?B\s*$`)
		if !re.MatchString(out) {
			missing = append(missing, SeedNames[n])
		}
	}
	if len(missing) > 0 {
		return Fail, "not listed with a size: " + strings.Join(missing, ", ")
	}
	return Pass, fmt.Sprintf("%d images listed under the seed's names, with their sizes", len(v.Variants))
}

// gpuImport judges importing CUDA torch here: it works only where cuDNN
// and the driver are; on this machine it must fail naming cuDNN.
func gpuImport(out string, err error) (Verdict, string) {
	if err == nil && strings.Contains(out, "torch OK") {
		return Pass, "CUDA torch imports (a host with cuDNN and the driver)"
	}
	if strings.Contains(out, "libcudnn") {
		return Differs, "CUDA torch cannot be imported on this machine: it needs cuDNN (" + firstMatch(out, `libcudnn[^:\s]*`) + "), which Debian cannot ship, so the offline index's nvidia-cudnn-cu12 wheel is a marked stand-in holding no library; with PyPI's nvidia-cudnn-cu12, on a GPU host with the driver and the NVIDIA container toolkit (docker run --gpus all), the same command imports torch and prints cuda=True. The next check reads the build from its files"
	}
	return Fail, "expected torch OK, or an ImportError naming libcudnn: " + lastLine(out)
}

func firstMatch(s, re string) string {
	return regexp.MustCompile(re).FindString(s)
}

// sizeJudge compares docker images' SIZE with the seed's target.
func (v *verifier) sizeJudge(variant string) judge {
	return func(out string, err error) (Verdict, string) {
		n, ok := v.Docker.ImageSize(context.Background(), SeedNames[variant])
		if err != nil || !ok {
			return Fail, "the engine does not have " + SeedNames[variant]
		}
		return sizeVerdict(variant, n, strings.TrimSpace(out))
	}
}

// sizeExplained is, for the images the seed's target cannot hold for here,
// the largest size the measured reason explains (docs/measurements.md, "Measured": 894
// MB, 943 MB and 3.87 GB as docker images counts them, with about 10%
// room): a larger image is a FAIL, not a DIFFERS.
var sizeExplained = map[string]struct {
	max float64
	why string
}{
	variants.WorkerCPU:  {1.0e9, "the ml layer (669 MB) is Debian's torch 2.6.0 CPU build with the 42 shared libraries it links repacked into it, plus SciPy, scikit-learn, SymPy; the seed's ~500 MB assumes PyPI's +cpu wheels, which cannot be had here (docs/measurements.md, \"Measured\")"},
	variants.BackendDev: {1.05e9, "the same ml layer as worker-cpu plus the dev group (docs/measurements.md, \"Measured\")"},
	variants.WorkerGPU:  {4.3e9, "torch's CUDA 12.4 build (Debian's python3-torch-cuda) with the nvidia-*-cu12 wheels repacked from Debian's CUDA 12.4 runtime: one CUDA stack, but Debian's builds, not PyPI's (docs/measurements.md, \"Measured\")"},
}

// sizeVerdict judges n bytes (docker images' SIZE, printed as out) of
// variant's image: PASS within the seed's target (10% over its upper
// bound), DIFFERS when over it but within what the measured reason
// explains, FAIL otherwise.
func sizeVerdict(variant string, n int64, out string) (Verdict, string) {
	t := seedTargets[variant]
	target := fmt.Sprintf("~%s", size(int64(t[1])))
	if t[0] > 0 {
		target = fmt.Sprintf("%s-%s", size(int64(t[0])), size(int64(t[1])))
	}
	detail := fmt.Sprintf("%s (%d bytes); the seed's target %s", out, n, target)
	if float64(n) <= t[1]*1.1 && float64(n) >= t[0] {
		return Pass, detail
	}
	e, ok := sizeExplained[variant]
	if !ok || float64(n) < t[0] {
		return Fail, detail
	}
	if float64(n) > e.max {
		return Fail, fmt.Sprintf("%s, and over the %s that Debian's builds explain (%s)", detail, size(int64(e.max)), e.why)
	}
	return Differs, detail + ": " + e.why
}

// size formats bytes as docker images does (decimal units).
func size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3gGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.3gMB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.3gkB", float64(n)/1e3)
}

// gone removes a container by name and waits until the name is free (a
// --rm container is removed after docker stop returns).
func (v *verifier) gone(ctx context.Context, name string) {
	v.Docker.Output(ctx, "rm", "-f", name)
	for i := 0; i < 30; i++ {
		if _, err := v.Docker.Output(ctx, "container", "inspect", name); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
}
