package world

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/buildkit/client"
)

// Disk budget of BuildKit's cache while tests run. buildkitd's own GC
// (buildkitd.toml) applies these too, but only between its throttled runs,
// and a suite that builds worker-gpu (4 GB per state) a dozen times in a
// few minutes outgrows it: measured, 43 GB of cache and 21 GB free halfway
// through `make test` on a machine that had 74 GB free. Trim enforces them
// before each test.
const (
	// TrimMaxUsed is how much of BuildKit's cache Trim keeps at most:
	// the four images of both examples, about 21 GB (at 20 GB the trim
	// before TestBake pruned 4.8 GB the clients had just built, and bake
	// rebuilt them: 2 min 7 s). TrimMinFree still governs a small disk.
	TrimMaxUsed = 32 << 30
	// TrimMinFree is the free disk Trim prunes for, as long as unused
	// cache is left to prune.
	TrimMinFree = 25 << 30
)

// Trim prunes what BuildKit's cache holds beyond the budget: the records
// no build uses, least recently used first, until the cache is at most
// TrimMaxUsed and the disk has TrimMinFree free (or nothing unused is
// left). What a later build needs again is rebuilt or re-imported; the
// world's own results (base images, the index) live outside BuildKit's
// cache and are untouched.
func (w *World) Trim(ctx context.Context) (int64, error) {
	c, err := w.Client(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ch := make(chan client.UsageInfo)
	done := make(chan int64)
	go func() {
		var n int64
		for u := range ch {
			n += u.Size
		}
		done <- n
	}()
	err = c.Prune(ctx, ch, client.PruneAll, client.WithKeepOpt(0, 0, TrimMaxUsed, TrimMinFree))
	close(ch)
	freed := <-done
	if err != nil {
		return freed, fmt.Errorf("pruning BuildKit's cache at %s: %w", w.BuildkitAddr, err)
	}
	return freed, nil
}

// trimForTest runs Trim and logs what it freed.
func trimForTest(w *World, logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	freed, err := w.Trim(ctx)
	switch {
	case err != nil:
		logf("world: %v", err)
	case freed > 0:
		logf("world: pruned %.1f GB of BuildKit's cache in %s (budget: %d GB used at most, %d GB free)",
			float64(freed)/1e9, time.Since(start).Round(100*time.Millisecond), TrimMaxUsed>>30, TrimMinFree>>30)
	}
}
