package engine

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
)

// DockerSizes gives, for each image of the report that the engine has,
// the SIZE docker images shows. The engine's image id is the image's
// config digest, read from the registry's manifest, so the image is found
// whatever names the engine gives it (the seed's, the registry's, none).
// Images the engine lacks are left out.
func (d Docker) DockerSizes(ctx context.Context, rep *build.Report) map[string]int64 {
	out := map[string]int64{}
	if rep == nil {
		return out
	}
	for _, im := range rep.Images {
		if im.Ref == "" || im.Digest == "" {
			continue
		}
		repo := im.Ref
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		p, err := platforms.Parse(im.Platform)
		if err != nil {
			continue
		}
		m, _, err := inspect.NewRegistry(repo+"@"+im.Digest, nil).Manifest(ctx, p)
		if err != nil {
			continue
		}
		if n, ok := d.ImageSize(ctx, m.Config.Digest.String()); ok {
			out[im.Variant] = n
		}
	}
	return out
}

// sizes prints the images as docker images sizes them beside the
// registry's compressed and uncompressed sizes.
func (v *verifier) sizes(ctx context.Context) {
	v.begin("sizes: docker images beside the registry")
	v.res.DockerSizes = v.Docker.DockerSizes(ctx, v.res.Report)
	if v.res.Report != nil {
		build.WriteTableDocker(v.Out, v.res.Report, v.res.DockerSizes)
	}
}

func (v *verifier) summary() {
	fmt.Fprintf(v.Out, "\n=== verdicts\n")
	count := map[Verdict]int{}
	tw := tabwriter.NewWriter(v.Out, 0, 4, 2, ' ', 0)
	for _, c := range v.res.Checks {
		count[c.Verdict]++
		if c.Verdict != Pass {
			cmd := strings.ReplaceAll(c.Command, "\n", "; ")
			if len(cmd) > 70 {
				cmd = cmd[:67] + "..."
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Verdict, c.Section, cmd)
		}
	}
	tw.Flush()
	fmt.Fprintf(v.Out, "%d checks: %d PASS, %d DIFFERS (explained above), %d FAIL\n", len(v.res.Checks), count[Pass], count[Differs], count[Fail])
}
