package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
)

// BenchmarkPlatforms measures what linux/arm64 costs beside linux/amd64:
// backend-prod and worker-cpu built cold (a cache namespace of their own)
// for both platforms in one run, then again warm, each image's solve and
// probes timed per platform (build.ImageReport's solve_seconds and
// probe_seconds). arm64's packages are installed natively (uv
// --python-platform); what runs under QEMU is its venv creation, the
// runtime stage's user and apt steps, and the probes. The log lines go to
// stderr and KTRDR_BENCH_LOGS/platforms.txt (a temporary directory by
// default); the full report to report-{cold,warm}.json there.
//
//	go test ./integration/bench -run XXX -bench BenchmarkPlatforms -benchtime 1x -timeout 90m
func BenchmarkPlatforms(b *testing.B) {
	if testing.Short() {
		b.Skip(world.SkipMessage)
	}
	ctx := context.Background()
	w, err := world.Up(ctx, world.Options{Log: os.Stderr, Arm64: true})
	if err != nil {
		b.Fatalf("the offline world: %v", err)
	}
	defer w.Close()
	if !w.Emulation.Arm64 {
		b.Skipf("linux/arm64 cannot be built here: %s", w.Emulation.Why)
	}
	c, err := w.Client(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	logs := os.Getenv("KTRDR_BENCH_LOGS")
	if logs == "" {
		logs = filepath.Join(os.TempDir(), "ktrdr-bench-platforms-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	logf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...) + "\n"
		os.Stderr.WriteString(line)
		if f, err := os.OpenFile(filepath.Join(logs, "platforms.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.WriteString(line)
			f.Close()
		}
	}
	o := w.BuildOptions(fmt.Sprintf("bench-platforms-%d", time.Now().Unix()))
	for _, round := range []string{"cold", "warm"} {
		progress, err := os.Create(filepath.Join(logs, "progress-"+round+".log"))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := build.Run(ctx, c, build.RunOptions{
			ContextDir: filepath.Join("..", "..", "examples", "ktrdr"), Variants: []string{"backend-prod", "worker-cpu"},
			Platforms: []string{"linux/amd64", "linux/arm64"}, Options: o,
			Probe: true, Push: true, Inspect: true, Progress: "plain", ProgressOut: progress,
		})
		progress.Close()
		took := time.Since(start)
		if err != nil {
			b.Fatalf("%s build (progress in %s): %v", round, progress.Name(), err)
		}
		if err := build.WriteReportFile(filepath.Join(logs, "report-"+round+".json"), rep); err != nil {
			b.Fatal(err)
		}
		logf("%s: backend-prod and worker-cpu for linux/amd64,linux/arm64 in %.1fs (load %s)", round, took.Seconds(), loadavg())
		for _, r := range rep.Images {
			ok := 0
			for _, p := range r.Probes {
				if p.OK {
					ok++
				}
			}
			logf("  %-12s %-11s solve %7.1fs  probes %6.1fs (%d/%d ok)  %s compressed, %d layers, %s",
				r.Variant, r.Platform, r.SolveSeconds, r.ProbeSeconds, ok, len(r.Probes), human(float64(r.CompressedBytes), "bytes"), r.Layers, r.Digest)
			b.ReportMetric(r.SolveSeconds, strings.Join([]string{round, r.Variant, strings.ReplaceAll(r.Platform, "/", "-"), "solve-s"}, "/"))
			b.ReportMetric(r.ProbeSeconds, strings.Join([]string{round, r.Variant, strings.ReplaceAll(r.Platform, "/", "-"), "probe-s"}, "/"))
		}
	}
	logf("logs in %s", logs)
}
