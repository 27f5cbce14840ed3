package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/engine"
	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/ktrdr/ktrdr-images/variants"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

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
