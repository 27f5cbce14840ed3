package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	example     = filepath.Join("..", "..", "examples", "ktrdr")
	dockerfiles = "baseline"
	outDefault  = filepath.Join("..", "..", "docs", "bench")
)

// config is read from the environment (see docs/measurements.md, "Benchmark against the Dockerfile way").
type config struct {
	cold, warm int
	variants   []string
	out, logs  string
	minFreeGB  int
}

func envInt(t testing.TB, key string, def int) int {
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: expected a positive integer", key, s)
	}
	return n
}

func readConfig(t testing.TB) config {
	c := config{
		cold:      envInt(t, "KTRDR_BENCH_COLD", 2),
		warm:      envInt(t, "KTRDR_BENCH_WARM", 3),
		out:       os.Getenv("KTRDR_BENCH_OUT"),
		logs:      os.Getenv("KTRDR_BENCH_LOGS"),
		minFreeGB: envInt(t, "KTRDR_BENCH_MIN_FREE_GB", DefaultMinFreeGB),
	}
	if c.out == "" {
		c.out = outDefault
	}
	if s := os.Getenv("KTRDR_BENCH_VARIANTS"); s != "" {
		for _, v := range strings.Split(s, ",") {
			if _, err := variants.Lookup(v); err != nil {
				t.Fatalf("KTRDR_BENCH_VARIANTS: %v", err)
			}
			c.variants = append(c.variants, v)
		}
	} else {
		c.variants = variants.Names()
	}
	return c
}

// offline are the options of the offline world (world.BuildOptions, as the
// integration tests use them), with every registry reference going through
// the push counter.
func offline(w *world.World, host string) variants.Options {
	rehost := func(ref string) string {
		if r, ok := strings.CutPrefix(ref, w.Registry+"/"); ok {
			return host + "/" + r
		}
		return ref
	}
	o := w.BuildOptions("bench")
	o.PythonBase = rehost(o.PythonBase)
	o.CUDABase = rehost(o.CUDABase)
	o.UVImage = rehost(o.UVImage)
	o.Registry = rehost(o.Registry)
	return o
}

// run is one benchmark run's state.
type run struct {
	b     *testing.B
	w     *world.World
	cfg   config
	c     *client.Client
	proxy *PushCounter
	opts  variants.Options
	tmp   string
	logs  string
	cache string
	res   *Results
	ins   *inspect.Inspector
	n     int
	start time.Time
	// heavy are the example lock's package sizes for linux/amd64.
	heavy map[string]int64
}

// logf prints a line as it happens (b.Logf prints only when the benchmark
// ends) and keeps it in the log directory's summary.txt.
func (r *run) logf(format string, args ...any) {
	line := fmt.Sprintf("[%6s] ", time.Since(r.start).Round(time.Second)) + fmt.Sprintf(format, args...) + "\n"
	os.Stderr.WriteString(line)
	if f, err := os.OpenFile(filepath.Join(r.logs, "summary.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.WriteString(line)
		f.Close()
	}
}

// build builds every configured variant one way from dir and records the
// time (metric, in seconds) and what the status stream and the push
// counter saw.
func (r *run) build(ctx context.Context, way, scenario, dir string, o variants.Options) (*Progress, PushStats) {
	r.b.Helper()
	r.n++
	logPath := filepath.Join(r.logs, fmt.Sprintf("%02d-%s-%s.jsonl", r.n, way, scenario))
	f, err := os.Create(logPath)
	if err != nil {
		r.b.Fatal(err)
	}
	defer f.Close()
	r.proxy.Reset()
	start := time.Now()
	switch way {
	case Ours:
		_, err = build.Run(ctx, r.c, build.RunOptions{
			ContextDir: dir, Variants: r.cfg.variants, Options: o,
			Push: true, Progress: "rawjson", ProgressOut: f,
		})
	case Baseline:
		reqs := dir + ".requirements"
		if err = WriteRequirements(dir, reqs, o); err == nil {
			err = BuildBaseline(ctx, r.c, BaselineOptions{
				Dockerfiles: dockerfiles, Context: dir, Requirements: reqs,
				Variants: r.cfg.variants, Options: o, Push: true, ProgressOut: f,
			})
		}
	}
	took := time.Since(start)
	push := r.proxy.Reset()
	if err != nil {
		r.b.Fatalf("%s %s build (progress in %s): %v", way, scenario, logPath, err)
	}
	f.Close()
	p, err := ReadProgress(logPath, start)
	if err != nil {
		r.b.Fatal(err)
	}
	r.res.Add(scenario+"_s", way, "s", took.Seconds())
	ran := p.Ran()
	var top []string
	for _, v := range ran[:min(6, len(ran))] {
		top = append(top, fmt.Sprintf("%s %s", v.Duration.Round(100*time.Millisecond), v.Name))
	}
	free, _ := FreeBytes(r.cache)
	r.logf("%-8s %-11s %6.1fs  pushed %s (%d blobs, %d mounts)  context %s  vertices: %d ran, %d cached  load %s  disk free %s\n    longest: %s",
		way, scenario, took.Seconds(), human(float64(push.Bytes), "bytes"), push.Blobs, push.Mounts,
		human(float64(p.ContextBytes), "bytes"), len(ran), p.Cached(), loadavg(), human(float64(free), "bytes"), strings.Join(top, "\n             "))
	if err := writeVertices(strings.TrimSuffix(logPath, ".jsonl")+".ran.txt", took, push, p); err != nil {
		r.b.Fatal(err)
	}
	return p, push
}

func writeVertices(path string, took time.Duration, push PushStats, p *Progress) error {
	var b strings.Builder
	fmt.Fprintf(&b, "took %s; pushed %d bytes (%d blobs, %d mounts); context %d bytes %v\n", took, push.Bytes, push.Blobs, push.Mounts, p.ContextBytes, p.Transfers)
	fmt.Fprintf(&b, "%d vertices ran, %d cached\n", len(p.Ran()), p.Cached())
	for _, v := range p.Ran() {
		fmt.Fprintf(&b, "%10s  %s\n", v.Duration.Round(10*time.Millisecond), v.Name)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("vertex summary: %w", err)
	}
	return nil
}

// measure reads the images of one way from the registry and records their
// sizes.
func (r *run) measure(ctx context.Context, way string, o variants.Options) {
	r.b.Helper()
	names := map[string]string{}
	for _, n := range r.cfg.variants {
		v, _ := variants.Lookup(n)
		name, err := o.ImageName(v)
		if err != nil {
			r.b.Fatal(err)
		}
		names[n] = name
	}
	start := time.Now()
	bases := []string{o.PythonBase}
	if o.CUDABase != "" {
		bases = append(bases, o.CUDABase)
	}
	s, err := Measure(ctx, r.ins, names, bases, ocispecs.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		r.b.Fatalf("measuring %s's images: %v", way, err)
	}
	r.res.Add("registry_unique_bytes", way, "bytes", float64(s.Unique))
	r.res.Add("registry_unique_above_base_bytes", way, "bytes", float64(s.UniqueAboveBase))
	for _, n := range r.cfg.variants {
		img := s.Images[n]
		r.res.Add("size_"+n+"_bytes", way, "bytes", float64(img.Uncompressed))
		r.res.Add("size_"+n+"_compressed_bytes", way, "bytes", float64(img.Compressed))
		r.res.Add("layers_"+n, way, "count", float64(len(img.Layers)))
		var largest inspect.Layer
		for _, l := range img.Layers {
			if l.Compressed > largest.Compressed {
				largest = l
			}
		}
		r.res.Add("largest_layer_"+n+"_bytes", way, "bytes", float64(largest.Compressed))
		r.res.Add("written_twice_"+n+"_bytes", way, "bytes", float64(img.ContentBytes-img.UniqueBytes))
		r.logf("%-8s %-13s %d layers, %s compressed, %s uncompressed, files %s (%s in layers)", way, n, len(img.Layers),
			human(float64(img.Compressed), "bytes"), human(float64(img.Uncompressed), "bytes"),
			human(float64(img.UniqueBytes), "bytes"), human(float64(img.ContentBytes), "bytes"))
	}
	r.logf("%-8s registry: %d distinct layers, %s unique (%s above the bases); measured in %s", way, s.Layers,
		human(float64(s.Unique), "bytes"), human(float64(s.UniqueAboveBase), "bytes"), time.Since(start).Round(time.Second))
	// The floor of a cold build: compressing its largest layer.
	var largest inspect.Layer
	var ref string
	for n, img := range s.Images {
		for _, l := range img.Layers {
			if l.Compressed > largest.Compressed {
				largest, ref = l, names[n]
			}
		}
	}
	if ref != "" {
		desc := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: largest.Digest, Size: largest.Compressed}
		took, n, err := CompressFloor(ctx, inspect.NewRegistry(ref, nil), desc, r.tmp)
		if err != nil {
			r.b.Fatalf("timing the largest layer's compression: %v", err)
		}
		r.res.Add("largest_layer_gzip_s", way, "s", took.Seconds())
		r.logf("%-8s largest layer %s (%s, %s unpacked): compress/gzip takes %.1fs on one core", way, largest.Digest, human(float64(largest.Compressed), "bytes"), human(float64(n), "bytes"), took.Seconds())
	}
}

// block is one way's part of a repetition: from an empty cache, a cold
// build, then k no-change rebuilds, k code changes and k dependency
// changes, each built, and last the big bump (one heavy package's pin
// changes).
func (r *run) block(ctx context.Context, way string, rep, k int, ns string) {
	r.b.Helper()
	dir := filepath.Join(r.tmp, fmt.Sprintf("%s-r%d", way, rep), "ktrdr")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		r.b.Fatal(err)
	}
	copyExampleTo(r.b, dir)
	o := r.opts
	o.Registry = r.proxy.Host + "/" + ns
	pruned := time.Now()
	if err := r.c.Prune(ctx, nil, client.PruneAll); err != nil {
		r.b.Fatalf("pruning the BuildKit cache: %v", err)
	}
	r.logf("%-8s repetition %d: pruned the BuildKit cache in %s; %d warm samples of each kind follow", way, rep, time.Since(pruned).Round(100*time.Millisecond), k)
	p, push := r.build(ctx, way, "cold", dir, o)
	r.res.Add("pushed_bytes", way, "bytes", float64(push.Bytes))
	r.res.Add("context_bytes", way, "bytes", float64(p.ContextBytes))
	if rep == 1 {
		// Sizes do not depend on the repetition; reading every layer back
		// takes a minute, so only the first one is measured.
		r.measure(ctx, way, o)
	}
	for range k {
		r.build(ctx, way, "warm", dir, o)
	}
	for i := range k {
		if err := CodeChange(dir, i+1); err != nil {
			r.b.Fatal(err)
		}
		_, push := r.build(ctx, way, "code_change", dir, o)
		r.res.Add("code_change_pushed_bytes", way, "bytes", float64(push.Bytes))
	}
	for i := range k {
		if err := MoveToRuntime(dir, "dev", DepMoves[i%len(DepMoves)]); err != nil {
			r.b.Fatal(err)
		}
		_, push := r.build(ctx, way, "dep_change", dir, o)
		r.res.Add("dep_change_pushed_bytes", way, "bytes", float64(push.Bytes))
	}
	r.bigBump(ctx, way, dir, o)
}

// BenchmarkImages is the comparison; docs/measurements.md gives the command. It runs
// once whatever b.N is.
func BenchmarkImages(b *testing.B) {
	if testing.Short() {
		b.Skip(world.SkipMessage)
	}
	cfg := readConfig(b)
	total := time.Now()
	ctx := context.Background()
	w, err := world.Up(ctx, world.Options{Log: os.Stderr})
	if err != nil {
		b.Fatalf("the offline world: %v", err)
	}
	defer w.Close()
	if err := CheckFree(w.CacheDir, cfg.minFreeGB); err != nil {
		b.Fatal(err)
	}
	c, err := w.Client(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	proxy, err := NewPushCounter(w.Registry)
	if err != nil {
		b.Fatal(err)
	}
	defer proxy.Close()
	tmp := b.TempDir()
	logs := cfg.logs
	if logs == "" {
		logs = filepath.Join(os.TempDir(), "ktrdr-bench-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	heavy, err := LockSizes(example)
	if err != nil {
		b.Fatal(err)
	}
	r := &run{b: b, w: w, cfg: cfg, c: c, proxy: proxy, opts: offline(w, proxy.Host), tmp: tmp, logs: logs, cache: w.CacheDir, res: NewResults(), ins: inspect.New(), start: total, heavy: heavy}
	r.logf("progress logs and vertex summaries in %s; variants %v; %d cold and %d warm repetitions; load before: %s", logs, cfg.variants, cfg.cold, cfg.warm, loadavg())

	// The graph alone, no daemon.
	gm, err := graphMarshal(ctx, example, variants.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range gm {
		r.res.Add("graph_marshal_ns", Ours, "ns", ns)
	}

	id := strconv.FormatInt(time.Now().Unix(), 36)
	b.ResetTimer()
	for rep := range cfg.cold {
		// Warm samples spread over the repetitions.
		k := cfg.warm / cfg.cold
		if rep < cfg.warm%cfg.cold {
			k++
		}
		ways := []string{Ours, Baseline}
		if rep%2 == 1 {
			slices.Reverse(ways)
		}
		for _, way := range ways {
			r.block(ctx, way, rep+1, k, fmt.Sprintf("bench-%s-%s-r%d", id, way, rep+1))
			// What is measured so far, in case the run is cut short.
			if err := r.res.WriteCSV(logs); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Start-up to the first healthy answer, with and without
	// compile-bytecode.
	r.startupRun(ctx, id, envInt(b, "KTRDR_BENCH_STARTS", 5))
	b.StopTimer()
	r.logf("load after: %s; the run took %s", loadavg(), time.Since(total).Round(time.Second))
	r.logf("results (min/median/max):\n%s", r.res.Table())
	for _, row := range r.res.Rows() {
		if !strings.HasSuffix(row.Metric, "_s") || row.Baseline.N == 0 {
			continue
		}
		b.ReportMetric(row.Ratio, row.Metric+"-ratio")
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := r.res.WriteCSV(cfg.out); err != nil {
		b.Fatal(err)
	}
	if err := r.res.WritePNG(filepath.Join(cfg.out, "results.png"), "ktrdr-images vs the Dockerfile way: ours / baseline", chartGroups(cfg.variants)); err != nil {
		b.Fatal(err)
	}
	r.logf("wrote %s", cfg.out)
}

func chartGroups(names []string) []ChartGroup {
	gs := []ChartGroup{
		{Name: "build time", Metrics: []string{"cold_s", "warm_s", "code_change_s", "dep_change_s", "big_bump_s"}, Labels: []string{"cold", "warm, no change", "code change", "dependency change", "heavy package bump"}},
		{Name: "bytes", Metrics: []string{"registry_unique_bytes", "registry_unique_above_base_bytes", "pushed_bytes", "dep_change_pushed_bytes", "big_bump_pushed_bytes"}, Labels: []string{"registry, all four", "registry, above bases", "pushed (cold)", "pushed (dependency change)", "pushed (heavy bump)"}},
		{Name: "image size (uncompressed)"},
		{Name: "image size (compressed)"},
	}
	for _, n := range names {
		gs[2].Metrics = append(gs[2].Metrics, "size_"+n+"_bytes")
		gs[2].Labels = append(gs[2].Labels, n)
		gs[3].Metrics = append(gs[3].Metrics, "size_"+n+"_compressed_bytes")
		gs[3].Labels = append(gs[3].Labels, n+" (gz)")
	}
	return gs
}

func loadavg() string {
	dt, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(dt))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// graphMarshal times variants.Graphs and the marshaling of all four
// definitions (no daemon: base images unresolved), per iteration, for at
// least a second and 20 iterations.
func graphMarshal(ctx context.Context, dir string, o variants.Options) ([]float64, error) {
	in, err := build.LocalInputs(dir)
	if err != nil {
		return nil, err
	}
	var out []float64
	start := time.Now()
	for len(out) < 20 || time.Since(start) < time.Second {
		t := time.Now()
		if err := marshalAll(ctx, in, o); err != nil {
			return nil, err
		}
		out = append(out, float64(time.Since(t).Nanoseconds()))
	}
	return out, nil
}

func marshalAll(ctx context.Context, in variants.Inputs, o variants.Options) error {
	imgs, err := variants.Graphs(ctx, in, o, nil)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if _, err := img.State.Marshal(ctx, llb.Platform(img.Platform)); err != nil {
			return fmt.Errorf("marshaling %s: %w", img.Variant.Name, err)
		}
	}
	return nil
}

// BenchmarkGraphMarshal times building the four graphs and marshaling
// their definitions, with no daemon.
func BenchmarkGraphMarshal(b *testing.B) {
	ctx := context.Background()
	in, err := build.LocalInputs(example)
	if err != nil {
		b.Fatal(err)
	}
	o := variants.DefaultOptions()
	for b.Loop() {
		if err := marshalAll(ctx, in, o); err != nil {
			b.Fatal(err)
		}
	}
}
