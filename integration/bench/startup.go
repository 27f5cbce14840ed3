package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/engine"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
)

// StartupVariants are the images whose start-up is timed, with and without
// compile-bytecode: the two KTRDR runs most.
var StartupVariants = []string{variants.BackendProd, variants.WorkerCPU}

// StartupTime starts ref with the Docker engine, publishing port on
// 127.0.0.1, and returns the time from `docker run` to the first answer
// 200 of GET path. The container is removed afterwards.
func StartupTime(ctx context.Context, d engine.Docker, ref string, port int, path string) (time.Duration, error) {
	start := time.Now()
	out, err := d.Output(ctx, "run", "-d", "-p", fmt.Sprintf("127.0.0.1::%d", port), ref)
	if err != nil {
		return 0, fmt.Errorf("docker run %s: %v: %s", ref, err, strings.TrimSpace(out))
	}
	id := strings.TrimSpace(out)
	if i := strings.LastIndex(id, "\n"); i >= 0 {
		id = id[i+1:]
	}
	defer d.Output(context.Background(), "rm", "-f", id)
	hp, err := d.Output(ctx, "port", id, fmt.Sprintf("%d/tcp", port))
	if err != nil {
		return 0, fmt.Errorf("docker port %s: %v: %s", id, err, hp)
	}
	addr := strings.TrimSpace(strings.Split(strings.TrimSpace(hp), "\n")[0])
	url := "http://" + addr + path
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs, _ := d.Output(ctx, "logs", "--tail", "20", id)
	return 0, fmt.Errorf("%s: no answer 200 from %s within 90s; its last log lines:\n%s", ref, url, logs)
}

// startup times n starts of each startup variant of the images named by o,
// after pulling them, and records each median as metric
// startup_VARIANT_SUFFIX_s for way.
func (r *run) startup(ctx context.Context, way, suffix string, o variants.Options, n int) {
	r.b.Helper()
	d := engine.Docker{}
	if err := d.NotAvailable(ctx); err != nil {
		r.logf("start-up times not measured: %v", err)
		return
	}
	for _, name := range StartupVariants {
		v, _ := variants.Lookup(name)
		ref, err := o.ImageName(v)
		if err != nil {
			r.b.Fatal(err)
		}
		if out, err := d.Output(ctx, "pull", ref); err != nil {
			r.b.Fatalf("docker pull %s: %v: %s", ref, err, out)
		}
		var ts []float64
		for range n {
			t, err := StartupTime(ctx, d, ref, v.Port, v.HealthPath)
			if err != nil {
				r.b.Fatal(err)
			}
			ts = append(ts, t.Seconds())
		}
		slices.Sort(ts)
		metric := "startup_" + name + suffix + "_s"
		for _, t := range ts {
			r.res.Add(metric, way, "s", t)
		}
		r.logf("%-8s %s: %d starts to the first healthy answer, median %.2fs (min %.2fs, max %.2fs)", way, metric, n, ts[len(ts)/2], ts[0], ts[len(ts)-1])
		d.Output(ctx, "rmi", ref)
	}
}

// startupRun builds backend-prod and worker-cpu three ways from a fresh
// copy of the example (ours, ours with compile-bytecode, the baseline),
// pushes them, and times their start-up with the Docker engine: n starts
// of each, median recorded. The baseline's times are recorded under both
// metrics, as the reference each is compared with.
func (r *run) startupRun(ctx context.Context, id string, n int) {
	r.b.Helper()
	for _, v := range StartupVariants {
		if !slices.Contains(r.cfg.variants, v) {
			r.logf("start-up times not measured: KTRDR_BENCH_VARIANTS leaves out %s", v)
			return
		}
	}
	dir := filepath.Join(r.tmp, "startup", "ktrdr")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		r.b.Fatal(err)
	}
	copyExampleTo(r.b, dir)
	for _, c := range []struct {
		way, suffix string
		compile     bool
	}{{Ours, "", false}, {Ours, "_compile_bytecode", true}, {Baseline, "", false}} {
		o := r.opts
		o.Registry = fmt.Sprintf("%s/bench-%s-startup-%s%s", r.proxy.Host, id, c.way, c.suffix)
		o.CompileBytecode = c.compile
		logPath := filepath.Join(r.logs, "startup-"+c.way+c.suffix+".jsonl")
		f, err := os.Create(logPath)
		if err != nil {
			r.b.Fatal(err)
		}
		start := time.Now()
		if c.way == Ours {
			_, err = build.Run(ctx, r.c, build.RunOptions{ContextDir: dir, Variants: StartupVariants, Options: o, Push: true, Progress: "rawjson", ProgressOut: f})
		} else {
			reqs := dir + ".requirements"
			if err = WriteRequirements(dir, reqs, o); err == nil {
				err = BuildBaseline(ctx, r.c, BaselineOptions{Dockerfiles: dockerfiles, Context: dir, Requirements: reqs, Variants: StartupVariants, Options: o, Push: true, ProgressOut: f})
			}
		}
		f.Close()
		if err != nil {
			r.b.Fatalf("%s%s: building the start-up images: %v", c.way, c.suffix, err)
		}
		r.logf("%-8s start-up images%s built in %s", c.way, c.suffix, time.Since(start).Round(time.Second))
		r.startup(ctx, c.way, c.suffix, o, n)
		if c.way == Baseline {
			r.startup(ctx, c.way, "_compile_bytecode", o, n)
		}
	}
}
