package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// The frontend's memory (issue 17, drill 4): the peak resident set of the
// process that reads the project and lock and makes the graphs, on
// examples/ktrdr's lock (memLockPackages packages), for the CLI (which does this in its own process)
// and for the frontend image (which does it in a container buildkitd
// starts).

// memBound is what either may use at its peak; the bound is generous so that it catches a leak or a copy of
// the context held in memory, not a change of Go's allocator.
const memBound = 512 << 20

// rssWatch samples the peak RSS (VmHWM) of every process whose argv[0]
// is exe, until stopped.
type rssWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64 // bytes
	seen int   // processes seen
}

// memLockPackages is how many packages examples/ktrdr's uv.lock, the one
// the drills read, holds (README quotes it; the drill checks it).
const memLockPackages = 62

func watchRSS(exe string) *rssWatch {
	r := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		pids := map[string]bool{}
		for {
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err != nil || !strings.HasPrefix(string(cmd), exe+"\x00") {
					continue
				}
				if hwm := vmHWM(filepath.Join("/proc", e.Name(), "status")); hwm > 0 {
					r.mu.Lock()
					r.peak = max(r.peak, hwm)
					if !pids[e.Name()] {
						pids[e.Name()] = true
						r.seen++
					}
					r.mu.Unlock()
				}
			}
			select {
			case <-r.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return r
}

// Stop ends the sampling and returns the peak in bytes and how many
// processes were seen.
func (r *rssWatch) Stop() (int64, int) {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak, r.seen
}

// lockPackages counts the packages of dir's uv.lock.
func lockPackages(t *testing.T, dir string) int {
	t.Helper()
	_, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(lock.Packages)
}

func vmHWM(statusFile string) int64 {
	f, err := os.Open(statusFile)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestCLIMemory: the ktrdr-images binary building images in one
// invocation (graphs of all four, solves and push) peaks under memBound:
// backend-prod and worker-cpu in make test, all four in the long tier.
func TestCLIMemory(t *testing.T) {
	w := world.ForTest(t)
	if n := lockPackages(t, example); n != memLockPackages {
		t.Errorf("%s/uv.lock has %d packages; the drill (and README) say %d", example, n, memLockPackages)
	}
	bin := filepath.Join(t.TempDir(), "ktrdr-images")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ktrdr-images").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	args := []string{"build", "--addr", w.BuildkitAddr, "--context", example, "--push", "--probe=false", "--progress", "plain"}
	what := "the four images"
	if !world.Long() {
		args = append(args, "--variant", "backend-prod", "--variant", "worker-cpu")
		what = "backend-prod and worker-cpu"
	}
	o := offline(w, "itest-memory")
	for _, kv := range [][2]string{{"python-base", o.PythonBase}, {"uv-image", o.UVImage}, {"uv-version", o.UVVersion},
		{"index-url", o.IndexURL}, {"cpu-index-url", o.CPUIndexURL}, {"registry", o.Registry}, {"source-date-epoch", epoch}} {
		args = append(args, "--opt", kv[0]+"="+kv[1])
	}
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(t.TempDir(), "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		dt, _ := os.ReadFile(logPath)
		t.Fatalf("ktrdr-images build: %v\n%s", err, lastLines(string(dt), 40))
	}
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	t.Logf("ktrdr-images build of %s (%s): peak RSS %.1f MiB", what, time.Since(start).Round(time.Second), float64(peak)/(1<<20))
	if peak > memBound {
		t.Errorf("peak RSS %d bytes, bound %d", peak, memBound)
	}
}
