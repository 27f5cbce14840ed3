package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
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
