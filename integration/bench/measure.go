package bench

import (
	"context"
	"fmt"

	"github.com/ktrdr/ktrdr-images/internal/inspect"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Sizes are what the registry holds of the four images of one way.
type Sizes struct {
	// Images by variant.
	Images map[string]*inspect.Image
	// Unique sums the compressed blobs (layers and configs) of all the
	// images once each: what a host pulls to run all four, and what the
	// registry stores for them. UniqueAboveBase leaves out the base
	// images' layers.
	Unique, UniqueAboveBase int64
	// Layers counts the distinct layers.
	Layers int
}

// Measure reads the images (variant to image name) from the registry.
// Layers found in the bases are counted in Unique but not in
// UniqueAboveBase.
func Measure(ctx context.Context, ins *inspect.Inspector, images map[string]string, bases []string, platform ocispecs.Platform) (*Sizes, error) {
	s := &Sizes{Images: map[string]*inspect.Image{}}
	base := map[digest.Digest]bool{}
	for _, b := range bases {
		img, err := ins.Inspect(ctx, inspect.NewRegistry(b, nil), platform)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", b, err)
		}
		for _, l := range img.Layers {
			base[l.Digest] = true
		}
	}
	seen := map[digest.Digest]bool{}
	for v, name := range images {
		img, err := ins.Inspect(ctx, inspect.NewRegistry(name, nil), platform)
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", v, err)
		}
		s.Images[v] = img
		var layers int64
		for _, l := range img.Layers {
			layers += l.Compressed
			if seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			s.Layers++
			s.Unique += l.Compressed
			if !base[l.Digest] {
				s.UniqueAboveBase += l.Compressed
			}
		}
		// The config: Compressed counts it with the layers.
		s.Unique += img.Compressed - layers
		s.UniqueAboveBase += img.Compressed - layers
	}
	return s, nil
}
