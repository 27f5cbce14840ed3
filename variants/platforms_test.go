package variants_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
)

func TestParsePlatforms(t *testing.T) {
	got, err := variants.ParsePlatforms("--platform", "linux/amd64, linux/arm64/v8,linux/arm64,linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v (normalized, deduplicated, in order)", got, want)
	}
	for _, bad := range []string{"linux/s390x", "windows/amd64", "linux/arm64/v7", "linux/amd64,darwin/arm64", "", " , "} {
		_, err := variants.ParsePlatforms("--platform", bad)
		if err == nil {
			t.Errorf("%q: accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "option --platform") {
			t.Errorf("%q: error %q does not name the option", bad, err)
		}
	}
}

// A bad platform names the option and what each variant supports; a
// variant that cannot be built for a platform (worker-gpu's CUDA torch on
// arm64) names the variant, the platform and why, before any build.
func TestCheckPlatforms(t *testing.T) {
	in, err := build.LocalInputs(example)
	if err != nil {
		t.Fatal(err)
	}
	o := variants.DefaultOptions()
	all := variants.All()
	for _, bad := range []string{"linux/s390x", "windows/amd64", "linux/arm64/v7"} {
		err := variants.CheckPlatforms("--platform", in, o, all, []string{"linux/amd64", bad})
		if err == nil {
			t.Fatalf("%s: accepted", bad)
		}
		for _, want := range []string{"option --platform", bad, "worker-gpu: linux/amd64", "backend-prod: linux/amd64"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", bad, err, want)
			}
		}
	}
	gpu, _ := variants.Lookup(variants.WorkerGPU)
	err = variants.CheckPlatforms("--platform", in, o, []variants.Variant{gpu}, []string{"linux/amd64", "linux/arm64"})
	if err == nil {
		t.Fatal("worker-gpu for linux/arm64: accepted")
	}
	for _, want := range []string{"variant worker-gpu", "linux/arm64", "supports linux/amd64", "CUDA"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("worker-gpu arm64: error %q does not say %q", err, want)
		}
	}
	if err := variants.CheckPlatforms("--platform", in, o, []variants.Variant{gpu}, []string{"linux/amd64"}); err != nil {
		t.Errorf("worker-gpu for linux/amd64: %v", err)
	}
}
