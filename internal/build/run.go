package build

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/ktrdr/ktrdr-images/internal/probe"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	bkbuild "github.com/moby/buildkit/cmd/buildctl/build"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/util/progress/progresswriter"
	"github.com/tonistiigi/fsutil"
)

// RunOptions configure a build of several variants on one buildkitd.
type RunOptions struct {
	// ContextDir is the project directory.
	ContextDir string
	// Variants to build; all when empty.
	Variants []string
	Options  variants.Options
	// Platforms to build each image for (variants.ParsePlatforms); empty:
	// Options.Platform alone. With several, each image name gets one OCI
	// index with a manifest per platform, every platform probed before
	// the export.
	Platforms []string
	// VariantPlatforms override Platforms for the variants they name, as
	// bake's per-target platforms do (worker-gpu: linux/amd64 alone).
	VariantPlatforms map[string][]string
	// Probe checks each image from the inside before it is exported.
	Probe bool
	// NoCache solves every vertex again instead of reusing cached results.
	NoCache bool
	// Push pushes each image under its name (type=image,push=true).
	Push bool
	// Outputs are buildctl --output values; "{variant}" in any value is
	// replaced by the variant's name (type=oci,dest=out/{variant}.tar).
	Outputs []string
	// ImportCache and ExportCache are buildctl --import-cache and
	// --export-cache values, with the same "{variant}" replacement (so
	// type=registry,ref=r/cache:{variant} or type=gha,scope={variant}).
	ImportCache []string
	ExportCache []string
	// Progress is the progress mode: auto, plain, tty, rawjson or quiet.
	Progress string
	// ProgressOut receives the progress display (os.Stderr by default).
	ProgressOut console.File
	// Inspect measures pushed images from the registry for the report.
	Inspect bool
	// SBOM attaches each image's SPDX document as an attestation;
	// SBOMOut, when set, is a directory each document is also written to
	// (VARIANT.spdx.json), with or without SBOM.
	SBOM    bool
	SBOMOut string
	// Provenance is BuildKit's attest:provenance value ("mode=min",
	// "mode=max"), "" for none (see ParseProvenance).
	Provenance string
	// Secrets are buildctl --secret values the install steps may read
	// (the index-auth option names which).
	Secrets []string
	// Addr is the daemon's address, for errors.
	Addr string
	// PushTimeout bounds each image's push (BuildKit's "pushing layers"
	// and "pushing manifest" steps); 0 means no bound. BuildKit's
	// registry client has no request timeout of its own: a registry that
	// stalls holds the push until it answers.
	PushTimeout time.Duration
}

// DiskFullError is a build that ran out of disk space on the daemon's
// side (ENOSPC in a step or in the export).
type DiskFullError struct {
	Variant, Addr string
	// Path is the file the daemon failed to write, when the error names
	// one (inside the step's container for a step's write).
	Path string
	// WheelBytes is what the variant's locked wheels weigh compressed
	// (the lock's sizes): the floor of what its build needs.
	WheelBytes int64
	Err        error
}

// noSpaceRe finds ENOSPC as Go writes it ("write PATH: no space left on
// device") and as Python does ("No space left on device: 'PATH'").
var noSpaceRe = regexp.MustCompile(`(?i)(?:(/[^\s:'"]+)['"]?: )?no space left on device(?:: ['"]?(/[^\s'"]+))?`)

// noSpacePath is the file a noSpaceRe match names, "" for none.
func noSpacePath(m []string) string {
	if m[1] != "" {
		return m[1]
	}
	return m[2]
}

func (e *DiskFullError) Error() string {
	where := ""
	if e.Path != "" {
		where = " writing " + e.Path
	}
	return fmt.Sprintf("variant %s: buildkitd at %s ran out of disk space%s (no space left on device): the build needs room for its installed packages (the locked wheels alone are %.0f MB compressed, 2-4 times that installed), the base image and the exported layers; free space on the daemon's disk or prune its cache (buildctl prune), then run the same command again (what was built is reused)\n%v",
		e.Variant, e.Addr, where, float64(e.WheelBytes)/1e6, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// lockedWheelBytes sums the sizes the lock records for the wheels a
// variant installs on its platform.
func lockedWheelBytes(img variants.Image, python string) int64 {
	if img.Pins == nil {
		return 0
	}
	env, err := pep508.EnvironmentFor(img.Platform, python)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range img.Pins.Pins {
		if c, ok := uvlock.ArtifactFor(p, env.PythonVersion, env.PlatformMachine); ok {
			n += c.Size
		}
	}
	return n
}

// PushTimeoutError is an image push that ran past RunOptions.PushTimeout:
// its solve was cancelled.
type PushTimeoutError struct {
	Variant, Image string
	// Step is the push step that was running ("pushing layers").
	Step    string
	Timeout time.Duration
}

func (e *PushTimeoutError) Error() string {
	reg := e.Image
	if named, err := reference.ParseNormalizedNamed(e.Image); err == nil {
		reg = reference.Domain(named)
	}
	return fmt.Sprintf("variant %s: pushing %s: %q still running after %s (--push-timeout): the registry %s stalled or is too slow; the push was cancelled",
		e.Variant, e.Image, e.Step, e.Timeout, reg)
}

// pushWatch cancels a solve whose push steps run longer than a timeout.
// The export's progress has no byte counts (BuildKit reports "pushing
// layers" as one step), so the bound is on the step, not on silence.
type pushWatch struct {
	timeout time.Duration
	cancel  context.CancelCauseFunc
	variant string
	mu      sync.Mutex
	timers  map[string]*time.Timer
}

func (p *pushWatch) add(st *client.SolveStatus) {
	if p.timeout <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range st.Statuses {
		if !strings.HasPrefix(s.ID, "pushing ") {
			continue
		}
		t, running := p.timers[s.ID]
		switch {
		case s.Completed != nil && running:
			t.Stop()
		case s.Started != nil && s.Completed == nil && !running:
			step := s.ID
			p.timers[step] = time.AfterFunc(p.timeout, func() {
				p.cancel(&PushTimeoutError{Variant: p.variant, Step: step, Timeout: p.timeout})
			})
		}
	}
}

func (p *pushWatch) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.timers {
		t.Stop()
	}
}

// DaemonLostError is a solve that lost its connection to buildkitd (the
// daemon exited, was killed or restarted) before it finished.
type DaemonLostError struct {
	Variant, Addr string
	Err           error
}

func (e *DaemonLostError) Error() string {
	addr := e.Addr
	if addr == "" {
		addr = "its address"
	}
	return fmt.Sprintf("variant %s: lost the connection to buildkitd at %s before the build finished (the daemon stopped, was killed or restarted); the image was not tagged: start the daemon and run the same command again: %v", e.Variant, addr, e.Err)
}

func (e *DaemonLostError) Unwrap() error { return e.Err }

// daemonLost reports whether err is the gRPC connection to buildkitd
// breaking, as opposed to an error the daemon returned.
func daemonLost(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, ok := status.FromError(e); ok && st.Code() == codes.Unavailable {
			return true
		}
	}
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"error reading from server: EOF", "transport is closing", "transport: Error while dialing"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// ParseProvenance reads a --provenance value as buildx does: "" or false
// for none, true for mode=min, else comma-separated key=value pairs with
// mode min or max. It returns BuildKit's attest:provenance value.
func ParseProvenance(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "false", "0":
		return "", nil
	case "true", "1":
		return "mode=min", nil
	}
	mode := ""
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("%q: expected true, false or mode=min|max", s)
		}
		switch k {
		case "mode":
			if v != "min" && v != "max" {
				return "", fmt.Errorf("%q: mode %q: expected min or max", s, v)
			}
			mode = v
		case "version", "builder-id", "reproducible", "inline-only", "filename":
		default:
			return "", fmt.Errorf("%q: unknown key %q: expected mode, version, builder-id, reproducible, inline-only or filename", s, k)
		}
	}
	if mode == "" {
		s = "mode=min," + s
	}
	return s, nil
}

// ImageReport is one row of the report: exactly the fields of --report.
type ImageReport struct {
	Variant string `json:"variant"`
	Ref     string `json:"ref"`
	// Digest is the platform's image manifest (of the export, or read
	// back from the registry); Index, for an image of several platforms,
	// is the digest of its index, the one its name points at.
	Digest            string `json:"digest"`
	Index             string `json:"index,omitempty"`
	Platform          string `json:"platform"`
	CompressedBytes   int64  `json:"compressed_bytes"`
	UncompressedBytes int64  `json:"uncompressed_bytes"`
	Layers            int    `json:"layers"`
	// LargestLayerBytes is the largest layer's compressed size.
	LargestLayerBytes int64          `json:"largest_layer_bytes"`
	Probes            []probe.Result `json:"probes"`
	// SolveSeconds and ProbeSeconds time this image's solve and probes
	// (the platforms of one image are solved concurrently).
	SolveSeconds float64 `json:"solve_seconds"`
	ProbeSeconds float64 `json:"probe_seconds"`
}

// Report is what a build produced.
type Report struct {
	Images []ImageReport `json:"images"`
	// Vertices measures the sharing between the concurrent solves.
	Vertices VertexStats `json:"-"`
	// Measures are the registry measures per variant (when inspected),
	// under MeasureKey.
	Measures map[string]*inspect.Image `json:"-"`
}

// MeasureKey is where Report.Measures keeps an image's measures: the
// variant's name, then " PLATFORM" when the build had several platforms.
func MeasureKey(variant, platform string, multi bool) string {
	if multi {
		return variant + " " + platform
	}
	return variant
}

// VertexStats counts the vertices the solves reported.
type VertexStats struct {
	// Total sums each solve's vertices; Distinct counts them once.
	Total, Distinct int
	// Shared are distinct vertices that several solves contain; Cached
	// are distinct vertices that completed from cache.
	Shared, Cached int
	// PerVariant is each solve's vertex count and how many were cached.
	PerVariant map[string][2]int
	// Ran names the vertices that ran (completed, not from cache), sorted.
	Ran []string
	// Names maps the digest of every distinct vertex, cached or not, to
	// its name: two builds' graphs compare by it whatever the cache held.
	Names map[string]string
}

type vertexSeen struct {
	name   string
	solves map[string]bool
	cached bool
	done   bool
}

type statsCollector struct {
	mu sync.Mutex
	v  map[string]*vertexSeen
}

func (s *statsCollector) add(variant string, st *client.SolveStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range st.Vertexes {
		k := v.Digest.String()
		e := s.v[k]
		if e == nil {
			e = &vertexSeen{solves: map[string]bool{}}
			s.v[k] = e
		}
		e.solves[variant] = true
		if v.Name != "" {
			e.name = v.Name
		}
		if v.Cached {
			e.cached = true
		}
		if v.Completed != nil {
			e.done = true
		}
	}
}

func (s *statsCollector) stats() VertexStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := VertexStats{Distinct: len(s.v), PerVariant: map[string][2]int{}, Names: map[string]string{}}
	for digest, e := range s.v {
		vs.Names[digest] = e.name
		vs.Total += len(e.solves)
		if len(e.solves) > 1 {
			vs.Shared++
		}
		if e.cached {
			vs.Cached++
		} else if e.done {
			vs.Ran = append(vs.Ran, e.name)
		}
		for name := range e.solves {
			c := vs.PerVariant[name]
			c[0]++
			if e.cached {
				c[1]++
			}
			vs.PerVariant[name] = c
		}
	}
	sort.Strings(vs.Ran)
	return vs
}

// VariantError is a failed variant among several.
type VariantError struct {
	Errors map[string]error
}

// Unwrap gives the variants' errors to errors.Is and errors.As.
func (e *VariantError) Unwrap() []error {
	names := make([]string, 0, len(e.Errors))
	for n := range e.Errors {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]error, 0, len(names))
	for _, n := range names {
		out = append(out, e.Errors[n])
	}
	return out
}

func (e *VariantError) Error() string {
	var parts []string
	for _, err := range e.Unwrap() {
		parts = append(parts, err.Error())
	}
	return strings.Join(parts, "\n")
}

// Run builds the variants concurrently on c, one solve and one export per
// image, so identical vertices are solved once and each image gets its own
// name. It returns the report of the images that were built; a variant that
// fails (a probe included) is not exported and makes the error non-nil.
func Run(ctx context.Context, c *client.Client, ro RunOptions) (*Report, error) {
	// Read and check the project and its spec once, before any solve: bad
	// input fails here, with nothing sent to the daemon.
	in, err := LocalInputs(ro.ContextDir)
	if err != nil {
		return nil, err
	}
	names := ro.Variants
	if len(names) == 0 {
		names = in.Spec.Names()
	}
	for _, n := range names {
		if _, err := in.Spec.Lookup(n); err != nil {
			return nil, fmt.Errorf("option --variant: %w", err)
		}
	}
	if ro.Options, err = in.Spec.Apply(ro.Options); err != nil {
		return nil, err
	}
	if err := ro.Options.Validate(); err != nil {
		return nil, err
	}
	// Each variant's platforms: checked against its lock (which
	// variant supports which) and normalized, before anything is built.
	platsOf := map[string][]string{}
	var union []string
	for _, n := range names {
		v, _ := in.Spec.Lookup(n) // checked above
		plats := ro.Platforms
		if vp, ok := ro.VariantPlatforms[n]; ok {
			plats = vp
		}
		if len(plats) == 0 {
			plats = []string{ro.Options.Platform}
		}
		if err := variants.CheckPlatforms("--platform", in, ro.Options, []variants.Variant{v}, plats); err != nil {
			return nil, err
		}
		if plats, err = variants.ParsePlatforms("--platform", strings.Join(plats, ",")); err != nil {
			return nil, err
		}
		platsOf[n] = plats
		union = append(union, plats...)
	}
	if union, err = variants.ParsePlatforms("--platform", strings.Join(union, ",")); err != nil {
		return nil, err
	}
	// The daemon must run every platform (natively or emulated) before
	// anything is solved; its native one is where packages are installed.
	buildPlat, err := WorkerPlatform(ctx, c, ro.Addr, union)
	if err != nil {
		return nil, err
	}
	in.BuildPlatform = &buildPlat
	// Kept for a disk-full error's figures, computed only then; made now
	// for every variant and platform, so a graph that cannot be made
	// (a cross build needing an sdist) fails before any solve.
	graphs := map[string]variants.Image{}
	for _, n := range names {
		for _, p := range platsOf[n] {
			po := ro.Options
			po.Platform = p
			imgs, err := variants.Graphs(ctx, in, po, []string{n})
			if err != nil {
				return nil, err
			}
			if _, ok := graphs[n]; !ok {
				graphs[n] = imgs[0]
			}
		}
	}
	multiOf := func(n string) bool { return len(platsOf[n]) > 1 }
	ctxFS, err := fsutil.NewFS(ro.ContextDir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", ro.ContextDir, err)
	}
	// The user's docker config gives registry credentials to the pushes
	// and to the measures read back; it is read once.
	dockerConfig := config.LoadDefaultConfigFile(os.Stderr)
	solveOpts := map[string]client.SolveOpt{}
	for _, n := range names {
		v, _ := in.Spec.Lookup(n) // checked above
		so, err := solveOpt(ro, v, dockerConfig)
		if err != nil {
			return nil, err
		}
		so.LocalMounts = map[string]fsutil.FS{ContextName: ctxFS}
		solveOpts[n] = so
	}

	pw, err := newPrinter(ctx, ro.ProgressOut, ro.Progress)
	if err != nil {
		return nil, err
	}
	mw := progresswriter.NewMultiWriter(pw)
	stats := &statsCollector{v: map[string]*vertexSeen{}}

	var (
		mu      sync.Mutex
		solved  = map[string][]*Solved{}
		resps   = map[string]*client.SolveResponse{}
		errs    = map[string]error{}
		wg      sync.WaitGroup
		writers = map[string]progresswriter.Writer{}
	)
	for _, n := range names {
		writers[n] = mw.WithPrefix(n, len(names) > 1)
	}
	// The solves share their base-image resolutions.
	resolves := newResolveCache()
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := make(chan *client.SolveStatus)
			w := writers[n]
			done := make(chan struct{})
			steps := newStepLog()
			vctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			watch := &pushWatch{timeout: ro.PushTimeout, cancel: cancel, variant: n, timers: map[string]*time.Timer{}}
			defer watch.stop()
			go func() {
				defer close(done)
				for st := range ch {
					stats.add(n, st)
					steps.add(st)
					watch.add(st)
					w.Status() <- st
				}
				close(w.Status())
			}()
			var ss []*Solved
			resp, err := c.Build(vctx, solveOpts[n], "ktrdr-images", func(ctx context.Context, gw gwclient.Client) (*gwclient.Result, error) {
				vin := in
				vin.Resolver = resolves.wrap(gw)
				var res *gwclient.Result
				var err error
				ss, res, err = SolvePlatforms(ctx, gw, vin, ro.Options, n, platsOf[n], SolveOptions{
					Probe: ro.Probe, NoCache: ro.NoCache,
					SBOM: ro.SBOMOut != "", AttachSBOM: ro.SBOM, Indexed: ro.SBOM || ro.Provenance != "" || multiOf(n),
				})
				return res, err
			}, ch)
			<-done
			mu.Lock()
			defer mu.Unlock()
			var s *Solved
			if len(ss) > 0 {
				solved[n] = ss
				s = ss[0]
				for _, x := range ss {
					if len(probe.Failed(x.Probes)) > 0 {
						s = x
					}
				}
			}
			var pto *PushTimeoutError
			if err != nil && errors.As(context.Cause(vctx), &pto) {
				if s != nil {
					pto.Image = s.Image.Name
				}
				errs[n] = pto
				return
			}
			if err != nil && ctx.Err() == nil && daemonLost(err) {
				errs[n] = &DaemonLostError{Variant: n, Addr: ro.Addr, Err: err}
				return
			}
			if err != nil {
				var pe *ProbeError
				if err = unwrapProbe(err, s, multiOf(n)); !errors.As(err, &pe) {
					err = fmt.Errorf("variant %s: %w", n, err)
					if step, lines := steps.explain(); step != "" {
						err = &StepError{Step: step, Lines: lines, Err: err}
					} else if pushRe.MatchString(err.Error()) {
						// A push refused at once: no step log, the hint alone.
						err = &StepError{Step: "exporting to image", Err: err}
					}
					if m := noSpaceRe.FindStringSubmatch(err.Error()); m != nil {
						err = &DiskFullError{Variant: n, Addr: ro.Addr, Path: noSpacePath(m), WheelBytes: lockedWheelBytes(graphs[n], ro.Options.Python), Err: err}
					}
				}
				errs[n] = err
				return
			}
			resps[n] = resp
		}()
	}
	wg.Wait()
	<-pw.Done()

	rep := &Report{Vertices: stats.stats(), Measures: map[string]*inspect.Image{}}
	ins := inspect.New()
	var creds func(string) (string, string, error)
	if ro.Inspect {
		creds = dockerCreds(dockerConfig)
	}
	for _, n := range names {
		multi := multiOf(n)
		for _, s := range solved[n] {
			plat := platforms.Format(s.Image.Platform)
			r := ImageReport{Variant: n, Ref: s.Image.Name, Platform: plat, Probes: s.Probes,
				SolveSeconds: s.SolveTime.Seconds(), ProbeSeconds: s.ProbeTime.Seconds()}
			if resp := resps[n]; resp != nil {
				if multi {
					r.Index = resp.ExporterResponse[exptypes.ExporterImageDigestKey]
				} else {
					r.Digest = resp.ExporterResponse[exptypes.ExporterImageDigestKey]
				}
				if ro.Push && ro.Inspect {
					m, err := ins.Inspect(ctx, inspect.NewRegistry(s.Image.Name, creds), s.Image.Platform)
					if err != nil {
						errs[n] = fmt.Errorf("variant %s (%s): measuring %s in the registry: %w", n, plat, s.Image.Name, err)
					} else {
						rep.Measures[MeasureKey(n, plat, multi)] = m
						r.CompressedBytes, r.UncompressedBytes, r.Layers = m.Compressed, m.Uncompressed, len(m.Layers)
						for _, l := range m.Layers {
							r.LargestLayerBytes = max(r.LargestLayerBytes, l.Compressed)
						}
						if r.Digest == "" {
							r.Digest = m.Digest.String()
						}
					}
				}
			}
			if r.Probes == nil {
				r.Probes = []probe.Result{}
			}
			rep.Images = append(rep.Images, r)
		}
	}
	if ro.SBOMOut != "" {
		for _, n := range names {
			for _, s := range solved[n] {
				if s == nil || s.SBOM == nil || errs[n] != nil {
					continue
				}
				if err := os.MkdirAll(ro.SBOMOut, 0o755); err != nil {
					return rep, fmt.Errorf("option --sbom-out: %w", err)
				}
				name := n
				if multiOf(n) {
					name += "." + strings.ReplaceAll(platforms.Format(s.Image.Platform), "/", "-")
				}
				f := filepath.Join(ro.SBOMOut, name+".spdx.json")
				if err := os.WriteFile(f, s.SBOM, 0o644); err != nil {
					return rep, fmt.Errorf("option --sbom-out: %w", err)
				}
			}
		}
	}
	if len(errs) > 0 {
		return rep, &VariantError{Errors: errs}
	}
	return rep, nil
}

// unwrapProbe keeps a probe failure's message readable: the gateway wraps
// the build function's error in its own text.
func unwrapProbe(err error, s *Solved, multi bool) error {
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe
	}
	if s != nil && len(probe.Failed(s.Probes)) > 0 {
		pe := &ProbeError{Variant: s.Image.Variant.Name, Failed: probe.Failed(s.Probes)}
		if multi {
			pe.Platform = platforms.Format(s.Image.Platform)
		}
		return pe
	}
	return err
}

// solveOpt makes the solve options of one variant: its exports, caches and
// the registry credentials of the user's docker config.
func solveOpt(ro RunOptions, v variants.Variant, dockerConfig *configfile.ConfigFile) (client.SolveOpt, error) {
	variant := v.Name
	name, err := ro.Options.ImageName(v)
	if err != nil {
		return client.SolveOpt{}, err
	}
	subst := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = strings.ReplaceAll(strings.ReplaceAll(x, "{variant}", variant), "{name}", name)
		}
		return out
	}
	outputs := subst(ro.Outputs)
	for _, o := range outputs {
		for _, field := range strings.Split(o, ",") {
			if dest, ok := strings.CutPrefix(field, "dest="); ok && dest != "-" {
				if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
					return client.SolveOpt{}, fmt.Errorf("option --output %s: %w", o, err)
				}
			}
		}
	}
	if ro.Push {
		outputs = append(outputs, "type=image,name="+name+",push=true")
	}
	exports, err := parseOutputs(outputs)
	if err != nil {
		return client.SolveOpt{}, err
	}
	for i := range exports {
		e := &exports[i]
		if e.Type == client.ExporterImage || e.Type == client.ExporterOCI || e.Type == client.ExporterDocker {
			if e.Attrs == nil {
				e.Attrs = map[string]string{}
			}
			if _, ok := e.Attrs["name"]; !ok {
				e.Attrs["name"] = name
			}
			if ro.Options.SourceDateEpoch != nil {
				if _, ok := e.Attrs["rewrite-timestamp"]; !ok {
					e.Attrs["rewrite-timestamp"] = "true"
				}
			}
		}
	}
	imports, err := bkbuild.ParseImportCache(subst(ro.ImportCache))
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("option --import-cache: %w", err)
	}
	cexports, err := bkbuild.ParseExportCache(subst(ro.ExportCache))
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("option --export-cache: %w", err)
	}
	sess := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(dockerConfig),
	})}
	if len(ro.Secrets) > 0 {
		sp, err := bkbuild.ParseSecret(ro.Secrets)
		if err != nil {
			return client.SolveOpt{}, fmt.Errorf("option --secret: %w", err)
		}
		sess = append(sess, sp)
	}
	attrs := map[string]string{}
	if ro.Provenance != "" {
		attrs["attest:provenance"] = ro.Provenance
	}
	return client.SolveOpt{
		Exports:       exports,
		CacheImports:  imports,
		CacheExports:  cexports,
		FrontendAttrs: attrs,
		Session:       sess,
	}, nil
}

// parseOutputs parses buildctl --output values with buildctl's parser.
func parseOutputs(outputs []string) ([]client.ExportEntry, error) {
	for _, o := range outputs {
		if strings.TrimSpace(o) == "" {
			return nil, fmt.Errorf("option --output: empty value")
		}
	}
	exports, err := bkbuild.ParseOutput(outputs)
	if err != nil {
		return nil, fmt.Errorf("option --output: %w", err)
	}
	return exports, nil
}

// newPrinter shows progress on out (stderr when nil) in mode (auto when
// empty), as buildctl's --progress does.
func newPrinter(ctx context.Context, out console.File, mode string) (progresswriter.Writer, error) {
	if out == nil {
		out = os.Stderr
	}
	if mode == "" {
		mode = "auto"
	}
	pw, err := progresswriter.NewPrinter(context.WithoutCancel(ctx), out, mode)
	if err != nil {
		return nil, fmt.Errorf("option --progress: %w", err)
	}
	return pw, nil
}

// dockerCreds reads registry credentials from the user's docker config.
func dockerCreds(cfg *configfile.ConfigFile) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		if host == "registry-1.docker.io" {
			host = "https://index.docker.io/v1/"
		}
		ac, err := cfg.GetAuthConfig(host)
		if err != nil {
			return "", "", err
		}
		if ac.IdentityToken != "" {
			return "", ac.IdentityToken, nil
		}
		return ac.Username, ac.Password, nil
	}
}
