package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// BumpPackage is the heavy package the big_bump scenario moves: scipy, a
// package of the ml extra alone in its layer, to the second release the
// world's index serves (world.BumpedScipy).
const BumpPackage = "scipy"

// BumpLock re-locks the project in dir with `uv lock --upgrade-package
// scipy` against the world's index, as a developer taking a new scipy
// would, and checks the lock moved to world.BumpedScipy.
func BumpLock(ctx context.Context, w *world.World, dir, logPath string) error {
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	lock, err := w.Lock(ctx, dir, log, "--upgrade-package", BumpPackage)
	if err != nil {
		return fmt.Errorf("big bump (log %s): %w", logPath, err)
	}
	if !strings.Contains(string(lock), fmt.Sprintf("name = %q\nversion = %q\n", BumpPackage, world.BumpedScipy)) {
		return fmt.Errorf("big bump: uv lock --upgrade-package %s did not move the lock to %s %s (log %s)", BumpPackage, BumpPackage, world.BumpedScipy, logPath)
	}
	return os.WriteFile(filepath.Join(dir, "uv.lock"), lock, 0o644)
}

// PushedLayer is one uploaded blob and the distributions it installs.
type PushedLayer struct {
	Digest     string
	Compressed int64
	Dists      []string
}

// pushedLayers reads the images of one way after a build and describes the
// blobs that build uploaded, once each.
func (r *run) pushedLayers(ctx context.Context, o variants.Options, digests []string) ([]PushedLayer, error) {
	byDigest := map[string]inspect.Layer{}
	for _, n := range r.cfg.variants {
		v, _ := variants.Lookup(n)
		name, err := o.ImageName(v)
		if err != nil {
			return nil, err
		}
		img, err := r.ins.Inspect(ctx, inspect.NewRegistry(name, nil), ocispecs.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", n, err)
		}
		for _, l := range img.Layers {
			byDigest[l.Digest.String()] = l
		}
	}
	var out []PushedLayer
	seen := map[string]bool{}
	for _, d := range digests {
		l, ok := byDigest[d]
		if !ok || seen[d] {
			continue // a config blob, or pushed twice
		}
		seen[d] = true
		p := PushedLayer{Digest: d, Compressed: l.Compressed}
		for _, dist := range l.Distributions() {
			p.Dists = append(p.Dists, dist.Name+" "+dist.Version)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PushedLayer) int { return int(b.Compressed - a.Compressed) })
	return out, nil
}

// bigBump is the big_bump scenario of one way: the lock's scipy moves to
// another release, the images are built and pushed, and the pushed blobs
// are classified: the one holding scipy (its own layer, for ours), and any
// other pushed layer holding a package of at least 1 MiB in the lock (the
// nvidia-* and torch layers above all).
func (r *run) bigBump(ctx context.Context, way, dir string, o variants.Options) {
	r.b.Helper()
	if err := BumpLock(ctx, r.w, dir, filepath.Join(r.logs, fmt.Sprintf("%s-big-bump-lock.log", way))); err != nil {
		r.b.Fatal(err)
	}
	_, push := r.build(ctx, way, "big_bump", dir, o)
	r.res.Add("big_bump_pushed_bytes", way, "bytes", float64(push.Bytes))
	layers, err := r.pushedLayers(ctx, o, push.Digests)
	if err != nil {
		r.b.Fatalf("%s big bump: reading the pushed layers: %v", way, err)
	}
	heavy := heavyNames(r.heavy)
	var bumpBytes, others int64
	var lines []string
	for _, l := range layers {
		has := func(pred func(string) bool) bool { return slices.ContainsFunc(l.Dists, pred) }
		isBump := has(func(d string) bool { return d == BumpPackage+" "+world.BumpedScipy })
		otherHeavy := has(func(d string) bool { n, _, _ := strings.Cut(d, " "); return heavy[n] && n != BumpPackage })
		if isBump {
			bumpBytes += l.Compressed
		}
		if otherHeavy {
			others++
		}
		what := strings.Join(l.Dists, ", ")
		if len(l.Dists) > 6 {
			what = strings.Join(l.Dists[:6], ", ") + fmt.Sprintf(" and %d more", len(l.Dists)-6)
		}
		if what == "" {
			what = "no distribution"
		}
		lines = append(lines, fmt.Sprintf("%s %s", human(float64(l.Compressed), "bytes"), what))
	}
	r.res.Add("big_bump_package_layer_bytes", way, "bytes", float64(bumpBytes))
	r.res.Add("big_bump_other_heavy_layers_pushed", way, "count", float64(others))
	r.logf("%-8s big bump: %d layers uploaded; the one with %s %s: %s; other layers with a heavy package: %d\n    %s",
		way, len(layers), BumpPackage, world.BumpedScipy, human(float64(bumpBytes), "bytes"), others, strings.Join(lines, "\n    "))
}

// heavyNames are the packages of the example's lock whose wheel for
// linux/amd64 is at least the default layer threshold.
func heavyNames(sizes map[string]int64) map[string]bool {
	out := map[string]bool{}
	for n, s := range sizes {
		if s >= variants.DefaultLayerThreshold {
			out[n] = true
		}
	}
	return out
}

// LockSizes maps each package of the project's lock in dir to the size the
// lock records for its wheel for CPython 3.13 on linux/amd64.
func LockSizes(dir string) (map[string]int64, error) {
	_, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, p := range lock.Packages {
		pin := uvlock.Pin{Name: p.Name, Version: p.Version, Index: p.Source.Registry, Source: p.Source, Package: p}
		if c, ok := uvlock.ArtifactFor(pin, "3.13", "x86_64"); ok {
			out[p.Name] = c.Size
		}
	}
	return out, nil
}
