package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
)

// SeedNames are the names the seed's `docker build -t` gives the four
// images; its `docker run` checks use them.
var SeedNames = map[string]string{
	variants.BackendDev:  "ktrdr-backend:dev",
	variants.BackendProd: "ktrdr-backend:prod",
	variants.WorkerCPU:   "ktrdr-worker-cpu:test",
	variants.WorkerGPU:   "ktrdr-worker-gpu:test",
}

// seedTargets are the seed's size targets (its E2E table), in bytes as
// docker images counts them (decimal units).
var seedTargets = map[string][2]float64{
	variants.BackendDev:  {0, 500e6},
	variants.BackendProd: {200e6, 300e6},
	variants.WorkerCPU:   {0, 500e6},
	variants.WorkerGPU:   {0, 3.3e9},
}

// Verdict is the outcome of one check.
type Verdict string

const (
	// Pass: the seed's expectation holds.
	Pass Verdict = "PASS"
	// Fail: it does not, and nothing on this machine explains it.
	Fail Verdict = "FAIL"
	// Differs: it cannot hold on this machine or with this example, for
	// the measured reason given in the detail (no cuDNN, engine 20.10's
	// BuildKit, the example's own health answer...).
	Differs Verdict = "DIFFERS"
)

// Check is one command and what it showed.
type Check struct {
	Section string
	// Command is the command line as typed.
	Command string
	Output  string
	Verdict Verdict
	Detail  string
	Took    time.Duration
}

// Result is everything Verify ran.
type Result struct {
	Facts  Facts
	Checks []Check
	// Report is our buildkitd's build of the four images (registry
	// sizes); DockerSizes the SIZE docker images shows for each variant.
	Report      *build.Report
	DockerSizes map[string]int64
}

// Failed lists the checks whose verdict is Fail.
func (r *Result) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Verdict == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Config says what Verify works on.
type Config struct {
	World *world.World
	// Docker runs the CLI with the buildx plugin (see InstallBuildx).
	Docker Docker
	// ModuleDir is the ktrdr-images checkout (the frontend is compiled
	// from it); ContextDir the project (examples/ktrdr).
	ModuleDir, ContextDir string
	// WorkDir holds scratch files: the docker tar, the Compose copy.
	WorkDir string
	// Out receives each command, its output and its verdict.
	Out io.Writer
	// BuildLog receives the builds' progress (stderr when nil).
	BuildLog *os.File
	// Variants limits the images (all four when empty).
	Variants []string
}

type verifier struct {
	Config
	res     *Result
	section string
}

// Verify runs the seed's verification on the engine: the engine's facts,
// the engine's own builder through our frontend, the images loaded from
// our buildkitd (docker load and docker pull), the seed's docker images
// and docker run checks, the smoke tests of the production backend and
// the development Compose file. A check that fails is recorded and the
// next ones still run; the error is for what stops the run itself.
func Verify(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if len(cfg.Variants) == 0 {
		cfg.Variants = variants.Names()
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	v := &verifier{Config: cfg, res: &Result{DockerSizes: map[string]int64{}}}
	if err := v.engine(ctx); err != nil {
		return v.res, err
	}
	v.engineBuilder(ctx)
	if err := v.load(ctx); err != nil {
		return v.res, err
	}
	v.seed(ctx)
	v.smoke(ctx)
	v.compose(ctx)
	v.sizes(ctx)
	v.summary()
	return v.res, nil
}

func (v *verifier) has(variant string) bool {
	for _, n := range v.Variants {
		if n == variant {
			return true
		}
	}
	return false
}

func (v *verifier) begin(section string) {
	v.section = section
	fmt.Fprintf(v.Out, "\n=== %s\n", section)
}

// record prints and keeps a check.
func (v *verifier) record(c Check) Check {
	c.Section = v.section
	if c.Command != "" {
		fmt.Fprintf(v.Out, "\n$ %s\n", c.Command)
	}
	if out := strings.TrimRight(c.Output, "\n"); out != "" {
		fmt.Fprintln(v.Out, indent(shorten(out, 40)))
	}
	took := ""
	if c.Took >= time.Second {
		took = fmt.Sprintf(" (%s)", c.Took.Round(100*time.Millisecond))
	}
	fmt.Fprintf(v.Out, "=> %s%s: %s\n", c.Verdict, took, c.Detail)
	v.res.Checks = append(v.res.Checks, c)
	return c
}

// judge decides a verdict from a command's output and error.
type judge func(out string, err error) (Verdict, string)

// sh runs a command line as typed and records the judged check.
func (v *verifier) sh(ctx context.Context, timeout time.Duration, line string, j judge) Check {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	out, err := v.Docker.Shell(ctx, v.WorkDir, line)
	verdict, detail := j(out, err)
	return v.record(Check{Command: line, Output: out, Verdict: verdict, Detail: detail, Took: time.Since(start)})
}

// succeeds judges by the exit status alone.
func succeeds(what string) judge {
	return func(out string, err error) (Verdict, string) {
		if err != nil {
			return Fail, fmt.Sprintf("%s: %v%s", what, err, lastWords(out))
		}
		return Pass, what
	}
}

// prints judges by the output containing want (and the command
// succeeding).
func prints(want string) judge {
	return func(out string, err error) (Verdict, string) {
		if err != nil {
			return Fail, fmt.Sprintf("exit status: %v (expected it to print %q)%s", err, want, lastWords(out))
		}
		if !strings.Contains(out, want) {
			return Fail, fmt.Sprintf("expected the output to contain %q", want)
		}
		return Pass, fmt.Sprintf("prints %q", want)
	}
}

// lastWords is the last non-empty line of a failed command's output, for
// the verdict's detail (the whole output is printed above it).
func lastWords(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return "; it printed last: " + l
		}
	}
	return "; it printed nothing"
}

func (v *verifier) engine(ctx context.Context) error {
	v.begin("the engine")
	f, err := v.Docker.Facts(ctx)
	if err != nil {
		return err
	}
	v.res.Facts = f
	store := "the graph driver's own image store (containerd image store off)"
	if f.ContainerdStore {
		store = "containerd's image store"
	}
	lines := []string{
		fmt.Sprintf("client %s (API %s), engine %s (API %s), containerd %s, runc %s", f.ClientVersion, f.ClientAPI, f.ServerVersion, f.ServerAPI, f.Containerd, f.Runc),
		fmt.Sprintf("storage driver %s, %s; cgroup v%s (%s driver)", f.StorageDriver, store, f.CgroupVersion, f.CgroupDriver),
		fmt.Sprintf("insecure (plain HTTP) registries: %s", strings.Join(f.Insecure, ", ")),
		fmt.Sprintf("buildx plugin: %s", orNone(f.Buildx)),
		fmt.Sprintf("docker compose (v2): %s; docker-compose (v1): %s", orNone(f.ComposeV2), orNone(f.ComposeV1)),
	}
	c := Check{Command: "docker version; docker info; docker buildx version; docker compose version; docker-compose version", Output: strings.Join(lines, "\n")}
	c.Verdict, c.Detail = Pass, "an engine answers"
	v.record(c)
	c = Check{Verdict: Pass, Detail: v.World.Registry + " is an insecure registry of the engine: docker pull works over plain HTTP"}
	if !f.InsecureAllows(v.World.Registry) {
		c.Verdict, c.Detail = Fail, v.World.Registry+" is not among the engine's insecure registries: docker pull from the world's registry cannot work (add it to insecure-registries in /etc/docker/daemon.json)"
	}
	v.record(c)
	v.sh(ctx, time.Minute, "docker buildx ls", succeeds("the buildx plugin lists the engine's builder (docker driver)"))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// capRE finds the capability BuildKit says it lacks.
var capRE = regexp.MustCompile(`requested experimental feature (\S+)\s.*?(not supported by build server|disabled on the build server)`)

// engineBuilder builds backend-prod with the engine's own builder (buildx's
// docker driver) through our frontend image: bake with BUILDKIT_SYNTAX and
// buildx build with a one-line # syntax= file, both loading into the
// engine.
func (v *verifier) engineBuilder(ctx context.Context) {
	v.begin("the engine's own builder (buildx docker driver) through the frontend image")
	fe := v.World.Registry + "/ktrdr-images/frontend:verify"
	start := time.Now()
	err := v.frontendImage(ctx, fe)
	c := Check{Command: "ktrdr-images frontend-image --push " + fe, Verdict: Pass, Detail: "frontend image built by our buildkitd and pushed", Took: time.Since(start)}
	if err != nil {
		c.Verdict, c.Detail = Fail, err.Error()
		v.record(c)
		return
	}
	v.record(c)
	insp := v.sh(ctx, time.Minute, "docker buildx inspect default", func(out string, err error) (Verdict, string) {
		if err != nil || !regexp.MustCompile(`(?m)^Driver:\s+docker$`).MatchString(out) {
			return Fail, "expected the default builder to be the engine's (driver docker)"
		}
		return Pass, "the default builder is the engine's own BuildKit (driver docker)"
	})
	bkVersion := "unknown"
	if m := buildkitVersionRE.FindStringSubmatch(insp.Output); m != nil {
		bkVersion = m[1]
	}

	o := v.World.BuildOptions("ktrdr")
	// The options that point a build at the offline world, as the
	// frontend's build args (and bake's variables of the same names).
	var env, bargs []string
	for _, kv := range [][2]string{
		{"PYTHON_BASE", o.PythonBase}, {"CUDA_BASE", o.CUDABase}, {"INSTALLER", o.Installer},
		{"UV_IMAGE", o.UVImage}, {"UV_VERSION", o.UVVersion},
		{"INDEX_URL", o.IndexURL}, {"CPU_INDEX_URL", o.CPUIndexURL}, {"CUDA_INDEX_URL", o.CUDAIndexURL},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
			bargs = append(bargs, "--build-arg "+kv[0]+"="+kv[1])
		}
	}
	// bake reads the context below its own directory, as the README runs
	// it; a path outside needs --allow=fs.read.
	contextArg := v.ContextDir
	if rel, err := filepath.Rel(v.ModuleDir, v.ContextDir); err == nil && !strings.HasPrefix(rel, "..") {
		contextArg = rel
	}
	engineJudge := func(out string, err error) (Verdict, string) {
		if err == nil {
			detail := fmt.Sprintf("built by engine %s's own BuildKit (%s) through our frontend, every step on the host network (--network host: the index is on 127.0.0.1), and loaded into the engine", v.res.Facts.ServerVersion, bkVersion)
			if strings.Contains(out, "no diff/merge on this BuildKit") {
				detail += "; this BuildKit has no diff or merge op (BuildKit < v0.10), so the frontend assembled each image by plain copies: no layer shared between images"
			}
			return Pass, detail
		}
		if m := capRE.FindStringSubmatch(out); m != nil {
			return Differs, fmt.Sprintf("engine %s's BuildKit (%s) lacks the LLB capability %q our graph needs (llb.Diff/llb.Merge, BuildKit >= v0.10, Docker >= 23.0): the frontend ran and refused to solve; the images below come from our buildkitd instead", v.res.Facts.ServerVersion, bkVersion, m[1])
		}
		return Fail, "the engine's builder failed: " + lastLine(out)
	}
	// Two of the four targets: the engine's builder shares no cache with
	// our buildkitd, and loading worker-gpu's 3.9 GB into the engine
	// (fuse-overlayfs) would double this check's time for nothing new.
	v.sh(ctx, 30*time.Minute, fmt.Sprintf("cd %s && FRONTEND=%s CONTEXT=%s REGISTRY=ktrdr-engine TAG=test PLATFORMS=linux/amd64 %s docker buildx bake --builder default --load --provenance=false --progress plain --allow network.host --set '*.network=host' backend-prod worker-cpu",
		v.ModuleDir, fe, contextArg, strings.Join(env, " ")), engineJudge)

	syntax := filepath.Join(v.WorkDir, "ktrdr.images")
	if err := os.WriteFile(syntax, []byte("# syntax="+fe+"\n"), 0o644); err != nil {
		v.record(Check{Verdict: Fail, Detail: err.Error()})
		return
	}
	v.sh(ctx, 5*time.Minute, fmt.Sprintf("docker buildx build --builder default --call=targets -f %s %s", syntax, v.ContextDir), func(out string, err error) (Verdict, string) {
		for _, n := range variants.Names() {
			if err != nil || !strings.Contains(out, n) {
				return Fail, "expected the four targets from the frontend's frontend.targets subrequest"
			}
		}
		return Pass, "the engine's BuildKit pulls and runs our frontend image: it lists the four targets"
	})
	v.sh(ctx, 10*time.Minute, fmt.Sprintf("docker buildx build --builder default --load --provenance=false --progress plain --network host --allow network.host -f %s --target backend-prod -t ktrdr-engine/ktrdr-backend:prod %s %s",
		syntax, strings.Join(bargs, " "), v.ContextDir), engineJudge)
	v.sh(ctx, 2*time.Minute, `docker run --rm ktrdr-engine/ktrdr-backend:prod python -c "import fastapi, ktrdr.api.main; print('engine-built backend-prod imports its API, fastapi', fastapi.__version__)"`, func(out string, err error) (Verdict, string) {
		if err != nil || !strings.Contains(out, "imports its API") {
			return Fail, "the image the engine's builder made does not run its API: " + lastLine(out)
		}
		return Pass, "the engine-built image runs"
	})
	// Out of the way of the seed's `docker images | grep ktrdr` below, which
	// lists the seed's four names.
	v.sh(ctx, time.Minute, "docker rmi ktrdr-engine/ktrdr-backend:prod ktrdr-engine/ktrdr-worker-cpu:test", func(out string, err error) (Verdict, string) {
		if err != nil {
			return Fail, "could not remove the engine-built images: " + lastLine(out)
		}
		return Pass, "the engine-built images are removed again; the seed's checks below run on the images of our buildkitd"
	})

	// The network the engine's builder gives RUN steps, with its own
	// Dockerfile frontend (no pull): the world's index is on 127.0.0.1.
	dir := filepath.Join(v.WorkDir, "network")
	os.MkdirAll(dir, 0o755)
	df := "FROM " + o.PythonBase + "\nRUN python3 -c \"import urllib.request as u; print('index answers', u.urlopen('" + o.IndexURL + "/').status)\"\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		v.record(Check{Verdict: Fail, Detail: err.Error()})
		return
	}
	for _, net := range []string{"default", "host"} {
		want := net == "host"
		v.sh(ctx, 5*time.Minute, "docker buildx build --builder default --no-cache --progress plain --network "+net+" "+dir, func(out string, err error) (Verdict, string) {
			reached := err == nil && strings.Contains(out, "index answers 200")
			switch {
			case reached && want:
				return Pass, "with --network host, RUN steps of the engine's builder reach the index on 127.0.0.1 (the engine grants network.host)"
			case !reached && !want && strings.Contains(out, "Connection refused"):
				return Pass, "the engine's builder runs RUN steps on its bridge network by default: 127.0.0.1 is the step's own loopback, so an index on the host's 127.0.0.1 needs --network host, which our frontend applies to all its steps (dockerui's NetworkMode)"
			case reached:
				return Pass, "RUN steps reach the index with the default network"
			}
			return Fail, "unexpected: " + lastLine(out)
		})
	}
}

var buildkitVersionRE = regexp.MustCompile(`BuildKit version:\s*(\S+)`)

func (v *verifier) frontendImage(ctx context.Context, ref string) error {
	dir, err := os.MkdirTemp(v.WorkDir, "frontend-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := build.CompileFrontend(ctx, v.ModuleDir, dir, "amd64")
	if err != nil {
		return err
	}
	c, err := v.World.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = build.FrontendImage(ctx, c, build.FrontendImageOptions{Binary: bin, Platform: amd64, Ref: ref, Push: true, Progress: "quiet"})
	return err
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// shorten keeps the first and last lines of a long output.
func shorten(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	head, tail := lines[:n/4], lines[len(lines)-(n-n/4):]
	return strings.Join(head, "\n") + fmt.Sprintf("\n[... %d lines ...]\n", len(lines)-n) + strings.Join(tail, "\n")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
