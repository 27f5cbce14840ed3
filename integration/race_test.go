package integration

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
)

// The race drill, after the images tests (file order) so that it runs on
// their cache: only the project layers and the exports are new.

// TestConcurrentBuilds: two invocations building the same variants on
// one buildkitd at once, pushing the same tags: backend-prod and
// worker-cpu (a torch layer and a bucket each) in make test, all four in
// the long tier. Both succeed with the same
// digests (probes off: they run per session and are tested elsewhere);
// every vertex that both report as run was run once (the same
// start time in both streams: BuildKit shares the solve); the final tags
// are complete images.
func TestConcurrentBuilds(t *testing.T) {
	w := world.ForTest(t)
	dir := copyExample(t)
	// New project layers for both: a line never written before.
	appendLine(t, filepath.Join(dir, "ktrdr", "api", "main.py"), fmt.Sprintf("# race %d", time.Now().UnixNano()))
	o := offline(w, "itest-race")
	if err := o.Set("source-date-epoch", epoch); err != nil {
		t.Fatal(err)
	}
	var names []string // all
	if !world.Long() {
		names = []string{"backend-prod", "worker-cpu"}
	}
	var (
		wg    sync.WaitGroup
		reps  [2]*build.Report
		errs  [2]error
		logs  [2]string
		start = time.Now()
	)
	for i := range 2 {
		logs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("progress-%d.json", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = buildWatched(t, w, buildArgs{dir: dir, variants: names, opts: o, push: true}, logs[i], nil)
		}()
	}
	wg.Wait()
	t.Logf("two builds of %v at once: %s", cmp.Or(strings.Join(names, ", "), "every variant"), time.Since(start).Round(time.Second))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i+1, err)
		}
	}
	digests := [2]map[string]string{{}, {}}
	for i, rep := range reps {
		for _, img := range rep.Images {
			digests[i][img.Variant] = img.Digest
		}
	}
	for v, d := range digests[0] {
		if digests[1][v] != d {
			t.Errorf("%s: %s and %s", v, d, digests[1][v])
		}
	}
	for _, img := range reps[0].Images {
		if err := complete(t, img.Ref); err != nil {
			t.Errorf("%s: %v", img.Variant, err)
		}
	}
	a, b := readRawJSON(t, logs[0]), readRawJSON(t, logs[1])
	var both, twice int
	for d, va := range a {
		vb, ok := b[d]
		if !ok || va.Cached || vb.Cached || va.Started == nil || vb.Started == nil || va.Completed == nil || vb.Completed == nil {
			continue
		}
		// The build context is each session's own upload, not a step.
		// Base-image resolutions are each client's own requests too.
		if strings.Contains(va.Name, "context") || strings.Contains(va.Name, "[internal]") || strings.Contains(va.Name, "] resolve ") {
			continue
		}
		both++
		if !va.Started.Equal(*vb.Started) {
			twice++
			t.Errorf("%s ran twice: started %s and %s", va.Name, va.Started.Format(time.StampMicro), vb.Started.Format(time.StampMicro))
		}
	}
	var ranA, ranB int
	for _, va := range a {
		if va.Completed != nil && !va.Cached && va.Started != nil {
			ranA++
		}
	}
	for _, vb := range b {
		if vb.Completed != nil && !vb.Cached && vb.Started != nil {
			ranB++
		}
	}
	t.Logf("digests %v; vertices run: %d in the first stream, %d in the second; %d steps reported run by both, each once (%d twice)", digests[0], ranA, ranB, both, twice)
	if both == 0 {
		t.Error("no step ran in both invocations: the drill tested nothing (the code change did not reach the project layers?)")
	}
}
