package build

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCheckWorkerPlatforms(t *testing.T) {
	amd := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	i386 := ocispecs.Platform{OS: "linux", Architecture: "386"}

	native, err := CheckWorkerPlatforms("buildkitd at X", [][]ocispecs.Platform{{amd, i386, arm}}, []string{"linux/amd64", "linux/arm64"})
	if err != nil || native.Architecture != "amd64" {
		t.Fatalf("amd64 daemon with QEMU: native %v, err %v", native, err)
	}
	// linux/arm64/v8 is linux/arm64.
	if _, err := CheckWorkerPlatforms("buildkitd at X", [][]ocispecs.Platform{{amd, {OS: "linux", Architecture: "arm64", Variant: "v8"}}}, []string{"linux/arm64"}); err != nil {
		t.Fatal(err)
	}
	// No emulator: the error names the platform, the daemon and the fix.
	_, err = CheckWorkerPlatforms("buildkitd at unix:///run/b.sock", [][]ocispecs.Platform{{amd, i386}}, []string{"linux/amd64", "linux/arm64"})
	if err == nil {
		t.Fatal("a daemon without arm64 accepted linux/arm64")
	}
	for _, want := range []string{"platform linux/arm64", "buildkitd at unix:///run/b.sock", "linux/amd64, linux/386", "qemu-user-static", "binfmt", "restart buildkitd", "nothing was built"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// A native arm64 daemon installs natively.
	native, err = CheckWorkerPlatforms("d", [][]ocispecs.Platform{{arm}}, []string{"linux/arm64"})
	if err != nil || native.Architecture != "arm64" {
		t.Fatalf("arm64 daemon: native %v, err %v", native, err)
	}
}

// The multi-platform result is what BuildKit's image exporter reads: a ref,
// config and base config per platform ID, the platform list in the order
// asked for, manifest annotations per platform, index annotations once.
func TestCombine(t *testing.T) {
	mk := func(p ocispecs.Platform) *Solved {
		r := gwclient.NewResult()
		r.SetRef(nil)
		r.AddMeta(exptypes.ExporterImageConfigKey, []byte(`{"architecture":"`+p.Architecture+`"}`))
		r.AddMeta(exptypes.ExporterImageBaseConfigKey, []byte(`{}`))
		r.AddMeta(exptypes.AnnotationManifestKey(nil, "org.opencontainers.image.title"), []byte("t"))
		r.AddMeta(exptypes.AnnotationIndexKey("org.opencontainers.image.title"), []byte("t"))
		return &Solved{Image: variants.Image{Platform: p}, Result: r, Attestations: []gwclient.Attestation{{Path: "sbom-" + p.Architecture}}}
	}
	res, err := combine([]*Solved{mk(ocispecs.Platform{OS: "linux", Architecture: "arm64"}), mk(ocispecs.Platform{OS: "linux", Architecture: "amd64"})})
	if err != nil {
		t.Fatal(err)
	}
	var list exptypes.Platforms
	if err := json.Unmarshal(res.Metadata[exptypes.ExporterPlatformsKey], &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Platforms) != 2 || list.Platforms[0].ID != "linux/arm64" || list.Platforms[1].ID != "linux/amd64" {
		t.Fatalf("platforms %+v: want linux/arm64 then linux/amd64", list.Platforms)
	}
	for _, id := range []string{"linux/arm64", "linux/amd64"} {
		if _, ok := res.Refs[id]; !ok {
			t.Errorf("no ref for %s", id)
		}
		if cfg := string(res.Metadata[exptypes.ExporterImageConfigKey+"/"+id]); !strings.Contains(cfg, strings.TrimPrefix(id, "linux/")) {
			t.Errorf("config of %s: %s", id, cfg)
		}
		if len(res.Attestations[id]) != 1 {
			t.Errorf("attestations of %s: %v", id, res.Attestations[id])
		}
	}
	if _, ok := res.Metadata[exptypes.ExporterImageConfigKey]; ok {
		t.Error("a platform-less image config is left in a multi-platform result")
	}
	if _, ok := res.Metadata["annotation-manifest[linux/arm64].org.opencontainers.image.title"]; !ok {
		var keys []string
		for k := range res.Metadata {
			keys = append(keys, k)
		}
		t.Errorf("no per-platform manifest annotation: %v", keys)
	}
	if _, ok := res.Metadata[exptypes.AnnotationIndexKey("org.opencontainers.image.title")]; !ok {
		t.Error("the index annotation is lost")
	}
}
