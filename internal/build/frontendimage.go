package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/containerd/console"
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

// FrontendImageOptions say how to build the frontend image.
type FrontendImageOptions struct {
	// Binary is the static frontend binary.
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
// binary, its entrypoint and the frontend labels, and exports it.
func FrontendImage(ctx context.Context, c *client.Client, o FrontendImageOptions) (string, error) {
	if o.Ref == "" && len(o.Outputs) == 0 {
		return "", fmt.Errorf("option --push REF or --output: the frontend image needs somewhere to go")
	}
	dir := filepath.Dir(o.Binary)
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return "", fmt.Errorf("frontend binary %s: %w", o.Binary, err)
	}
	outputs := append([]string{}, o.Outputs...)
	if o.Ref != "" {
		outputs = append(outputs, fmt.Sprintf("type=image,name=%s,push=%v", o.Ref, o.Push))
	}
	exports, err := parseOutputs(outputs)
	if err != nil {
		return "", err
	}
	img := ocispecs.Image{Platform: o.Platform}
	img.Config.Entrypoint = []string{"/bin/frontend"}
	img.Config.Labels = map[string]string{
		"moby.buildkit.frontend.network.none":  "true",
		"moby.buildkit.frontend.caps":          FrontendCaps,
		"org.opencontainers.image.title":       "ktrdr-images frontend",
		"org.opencontainers.image.description": "BuildKit frontend building KTRDR's images from LLB, without Dockerfiles",
	}
	img.RootFS.Type = "layers"
	cfg, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	pw, err := newPrinter(ctx, o.Out, o.Progress)
	if err != nil {
		return "", err
	}
	resp, err := c.Build(ctx, client.SolveOpt{Exports: exports, LocalMounts: map[string]fsutil.FS{"frontend-bin": fs}}, "ktrdr-images", func(ctx context.Context, gw gwclient.Client) (*gwclient.Result, error) {
		st := llb.Scratch().File(llb.Copy(llb.Local("frontend-bin", llb.IncludePatterns([]string{filepath.Base(o.Binary)})), "/"+filepath.Base(o.Binary), "/bin/frontend",
			&llb.CopyInfo{CreateDestPath: true}), llb.WithCustomName("[frontend image] /bin/frontend"))
		def, err := st.Marshal(ctx, llb.Platform(o.Platform))
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
		res := gwclient.NewResult()
		res.SetRef(ref)
		res.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		return res, nil
	}, pw.Status())
	<-pw.Done()
	if err != nil {
		return "", err
	}
	return resp.ExporterResponse[exptypes.ExporterImageDigestKey], nil
}
