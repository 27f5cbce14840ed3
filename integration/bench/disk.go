package bench

import (
	"fmt"
	"syscall"
)

// DefaultMinFreeGB is the free space a full run needs on the file system of
// the world's cache directory, with a margin: the BuildKit cache grows to
// about 30 GB within one way's block (every code or dependency change
// writes new copies of the environments) and the registry keeps about 19 GB
// of pushes, since every repetition pushes to a fresh namespace. The
// committed full run used 50 GB at its peak.
const DefaultMinFreeGB = 60

// FreeBytes is the space left to unprivileged writers on the file system
// that holds path.
func FreeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// CheckFree fails, before anything is built, when the file system of dir
// has less than minGB gigabytes free, saying what to free.
func CheckFree(dir string, minGB int) error {
	free, err := FreeBytes(dir)
	if err != nil {
		return err
	}
	if free >= uint64(minGB)<<30 {
		return nil
	}
	return fmt.Errorf("%s: %.1f GiB free, expected at least %d GiB for a full run (KTRDR_BENCH_MIN_FREE_GB; "+
		"fewer repetitions need less): prune the BuildKit cache (buildctl prune --all) and delete old bench-* "+
		"images from the registry, then run its garbage-collect (integration/bench/README.md, Disk)",
		dir, float64(free)/(1<<30), minGB)
}
