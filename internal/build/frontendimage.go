package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/containerd/console"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// FrontendCaps are the capabilities the frontend image declares, as
// BuildKit's own Dockerfile frontend image does; BuildKit refuses to pass
// a frontend what its image does not declare.
const FrontendCaps = "moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"

// CompileFrontend builds cmd/frontend as a static Linux binary for arch
// into dir, from the module at moduleDir, and returns its path.
func CompileFrontend(ctx context.Context, moduleDir, dir, arch string) (string, error) {
	out := filepath.Join(dir, "frontend")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "netgo,osusergo", "-ldflags", "-s -w", "-o", out, "./cmd/frontend")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling cmd/frontend in %s: %w\n%s", moduleDir, err, b)
	}
	return out, nil
}

// FrontendBinary is the static frontend binary for one platform.
type FrontendBinary struct {
	Platform ocispecs.Platform
	Path     string
}

// CompileFrontends cross-compiles cmd/frontend for each platform (Go needs
// no emulator for that), each into its own directory under dir.
func CompileFrontends(ctx context.Context, moduleDir, dir string, plats []ocispecs.Platform) ([]FrontendBinary, error) {
	var out []FrontendBinary
	for _, p := range plats {
		d := filepath.Join(dir, p.OS+"-"+p.Architecture)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		bin, err := CompileFrontend(ctx, moduleDir, d, p.Architecture)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", platforms.Format(p), err)
		}
		out = append(out, FrontendBinary{Platform: p, Path: bin})
	}
	return out, nil
}

// FrontendImageOptions say how to build the frontend image.
type FrontendImageOptions struct {
	// Binaries are the static frontend binaries, one per platform: with
	// several, the image is one OCI index with a manifest per platform.
	Binaries []FrontendBinary
	// Binary and Platform are the one binary when Binaries is empty.
	Binary   string
	Platform ocispecs.Platform
	// Ref is the image name; Push pushes it there.
	Ref  string
	Push bool
	// Outputs are extra buildctl --output values.
	Outputs  []string
	Progress string
	Out      console.File
}

// FrontendImage builds the frontend image with LLB: scratch plus the
// binary, its entrypoint and the frontend labels, for each platform, and
// exports it (one index for several platforms).
func FrontendImage(ctx context.Context, c *client.Client, o FrontendImageOptions) (string, error) {
	if o.Ref == "" && len(o.Outputs) == 0 {
		return "", fmt.Errorf("option --push REF or --output: the frontend image needs somewhere to go")
	}
	bins := o.Binaries
	if len(bins) == 0 {
		bins = []FrontendBinary{{Platform: o.Platform, Path: o.Binary}}
	}
	mounts := map[string]fsutil.FS{}
	for i, b := range bins {
		fs, err := fsutil.NewFS(filepath.Dir(b.Path))
		if err != nil {
			return "", fmt.Errorf("frontend binary %s: %w", b.Path, err)
		}
		mounts[fmt.Sprintf("frontend-bin-%d", i)] = fs
	}
	outputs := append([]string{}, o.Outputs...)
	if o.Ref != "" {
		outputs = append(outputs, fmt.Sprintf("type=image,name=%s,push=%v", o.Ref, o.Push))
	}
	exports, err := parseOutputs(outputs)
	if err != nil {
		return "", err
	}
	config := func(p ocispecs.Platform) ([]byte, error) {
		img := ocispecs.Image{Platform: p}
		img.Config.Entrypoint = []string{"/bin/frontend"}
		img.Config.Labels = map[string]string{
			"moby.buildkit.frontend.network.none":  "true",
			"moby.buildkit.frontend.caps":          FrontendCaps,
			"org.opencontainers.image.title":       "ktrdr-images frontend",
			"org.opencontainers.image.description": "BuildKit frontend building KTRDR's images from LLB, without Dockerfiles",
		}
		img.RootFS.Type = "layers"
		return json.Marshal(img)
	}
	pw, err := newPrinter(ctx, o.Out, o.Progress)
	if err != nil {
		return "", err
	}
	resp, err := c.Build(ctx, client.SolveOpt{Exports: exports, LocalMounts: mounts}, "ktrdr-images", func(ctx context.Context, gw gwclient.Client) (*gwclient.Result, error) {
		res := gwclient.NewResult()
		var list exptypes.Platforms
		for i, b := range bins {
			id := platforms.FormatAll(platforms.Normalize(b.Platform))
			src := llb.Local(fmt.Sprintf("frontend-bin-%d", i), llb.IncludePatterns([]string{filepath.Base(b.Path)}))
			st := llb.Scratch().File(llb.Copy(src, "/"+filepath.Base(b.Path), "/bin/frontend", &llb.CopyInfo{CreateDestPath: true}),
				llb.WithCustomNamef("[frontend image %s] /bin/frontend", id))
			def, err := st.Marshal(ctx, llb.Platform(b.Platform))
			if err != nil {
				return nil, err
			}
			r, err := gw.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), Evaluate: true})
			if err != nil {
				return nil, err
			}
			ref, err := r.SingleRef()
			if err != nil {
				return nil, err
			}
			cfg, err := config(b.Platform)
			if err != nil {
				return nil, err
			}
			if len(bins) == 1 {
				res.SetRef(ref)
				res.AddMeta(exptypes.ExporterImageConfigKey, cfg)
				return res, nil
			}
			res.AddRef(id, ref)
			res.AddMeta(exptypes.ExporterImageConfigKey+"/"+id, cfg)
			list.Platforms = append(list.Platforms, exptypes.Platform{ID: id, Platform: platforms.Normalize(b.Platform)})
		}
		dt, err := json.Marshal(list)
		if err != nil {
			return nil, err
		}
		res.AddMeta(exptypes.ExporterPlatformsKey, dt)
		return res, nil
	}, pw.Status())
	<-pw.Done()
	if err != nil {
		return "", err
	}
	return resp.ExporterResponse[exptypes.ExporterImageDigestKey], nil
}
