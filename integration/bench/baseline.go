package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progresswriter"
	"github.com/tonistiigi/fsutil"
)

// BaselineFiles maps each variant to its Dockerfile in baseline/.
var BaselineFiles = map[string]string{
	variants.BackendDev:  "Dockerfile.dev",
	variants.BackendProd: "Dockerfile.backend",
	variants.WorkerCPU:   "Dockerfile.worker-cpu",
	variants.WorkerGPU:   "Dockerfile.worker-gpu",
}

// BaselineOptions configure a build of the baseline Dockerfiles.
type BaselineOptions struct {
	// Dockerfiles is the directory of the Dockerfiles (baseline/).
	Dockerfiles string
	// Context is the project directory, sent as the build context.
	Context string
	// Requirements holds <variant>.txt (WriteRequirements), sent as the
	// named context "requirements".
	Requirements string
	// Variants to build; all when empty.
	Variants []string
	// Options give the base images, the index and the image names (the
	// same names as ours, under another registry namespace).
	Options variants.Options
	// Push pushes each image under its name.
	Push bool
	// ProgressOut receives the rawjson progress of every solve.
	ProgressOut *os.File
}

// BuildArgs are the build args every baseline Dockerfile takes.
func BuildArgs(o variants.Options) map[string]string {
	return map[string]string{
		"PYTHON_BASE": o.PythonBase,
		"CUDA_BASE":   o.CUDABase,
		"INDEX_URL":   o.IndexURL,
		"UV_IMAGE":    o.UVImage + ":" + o.UVVersion,
	}
}

// BuildBaseline builds the baseline images as a CI matrix (or buildx
// bake) does: one solve of BuildKit's built-in Dockerfile frontend per
// image, the solves at the same time on one buildkitd.
func BuildBaseline(ctx context.Context, c *client.Client, bo BaselineOptions) error {
	names := bo.Variants
	if len(names) == 0 {
		names = variants.Names()
	}
	ctxFS, err := fsutil.NewFS(bo.Context)
	if err != nil {
		return fmt.Errorf("build context %s: %w", bo.Context, err)
	}
	dfFS, err := fsutil.NewFS(bo.Dockerfiles)
	if err != nil {
		return fmt.Errorf("dockerfiles %s: %w", bo.Dockerfiles, err)
	}
	reqFS, err := fsutil.NewFS(bo.Requirements)
	if err != nil {
		return fmt.Errorf("requirements %s: %w", bo.Requirements, err)
	}
	out := bo.ProgressOut
	if out == nil {
		out = os.Stderr
	}
	pw, err := progresswriter.NewPrinter(context.WithoutCancel(ctx), out, "rawjson")
	if err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	mw := progresswriter.NewMultiWriter(pw)
	solves := map[string]client.SolveOpt{}
	writers := map[string]progresswriter.Writer{}
	for _, n := range names {
		v, err := variants.Lookup(n)
		if err != nil {
			return err
		}
		file, ok := BaselineFiles[n]
		if !ok {
			return fmt.Errorf("variant %s has no baseline Dockerfile", n)
		}
		if _, err := os.Stat(filepath.Join(bo.Dockerfiles, file)); err != nil {
			return fmt.Errorf("variant %s: %w", n, err)
		}
		name, err := bo.Options.ImageName(v)
		if err != nil {
			return err
		}
		attrs := map[string]string{
			"filename":             file,
			"context:requirements": "local:requirements",
		}
		for k, val := range BuildArgs(bo.Options) {
			attrs["build-arg:"+k] = val
		}
		so := client.SolveOpt{
			Frontend:      "dockerfile.v0",
			FrontendAttrs: attrs,
			LocalMounts: map[string]fsutil.FS{
				"context":      ctxFS,
				"dockerfile":   dfFS,
				"requirements": reqFS,
			},
		}
		if bo.Push {
			so.Exports = []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{"name": name, "push": "true"}}}
		}
		solves[n] = so
		writers[n] = mw.WithPrefix(n, len(names) > 1)
	}
	var (
		mu   sync.Mutex
		errs = map[string]error{}
		wg   sync.WaitGroup
	)
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			so := solves[n]
			_, err := c.Solve(ctx, nil, so, writers[n].Status())
			if err != nil {
				mu.Lock()
				errs[n] = fmt.Errorf("baseline %s (%s): %w", n, so.FrontendAttrs["filename"], err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	<-pw.Done()
	if len(errs) > 0 {
		keys := make([]string, 0, len(errs))
		for k := range errs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var all []error
		for _, k := range keys {
			all = append(all, errs[k])
		}
		return errors.Join(all...)
	}
	return nil
}
