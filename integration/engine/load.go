package engine

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// load builds the images on our buildkitd (the way that works on engine
// 20.10), pushes them to the world's registry, and brings them into the
// engine both ways: backend-prod exported as a docker tar into docker
// load, and every image with docker pull, then tagged with the seed's
// names.
func (v *verifier) load(ctx context.Context) error {
	v.begin("images from our buildkitd into the engine: docker load and docker pull")
	c, err := v.World.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	o := v.World.BuildOptions("ktrdr")
	start := time.Now()
	rep, err := build.Run(ctx, c, build.RunOptions{
		ContextDir: v.ContextDir, Variants: v.Variants, Options: o,
		Probe: true, Push: true, Inspect: true, Progress: "plain", ProgressOut: v.BuildLog,
	})
	v.res.Report = rep
	var table bytes.Buffer
	if rep != nil {
		build.WriteTable(&table, rep)
	}
	ck := Check{Command: fmt.Sprintf("ktrdr-images build --context %s --push --opt registry=%s %s", v.ContextDir, o.Registry, variantFlags(v.Variants)),
		Output: table.String(), Verdict: Pass, Detail: "built, probed from the inside and pushed by our buildkitd", Took: time.Since(start)}
	if err != nil {
		ck.Verdict, ck.Detail = Fail, err.Error()
	}
	v.record(ck)
	if rep == nil || len(rep.Images) == 0 {
		return fmt.Errorf("no image was built: %v", err)
	}
	refs := map[string]string{}
	for _, im := range rep.Images {
		if im.Digest != "" {
			refs[im.Variant] = im.Ref
		}
	}

	var loadedID, pulledProd string
	if v.has(variants.BackendProd) && refs[variants.BackendProd] != "" {
		tar := filepath.Join(v.WorkDir, "backend-prod.docker.tar")
		// One solve, two exports (the push and the tar), so the image
		// docker load gets is the one docker pull gets, whether or not
		// this solve comes from the cache.
		start := time.Now()
		rep2, err := build.Run(ctx, c, build.RunOptions{
			ContextDir: v.ContextDir, Variants: []string{variants.BackendProd}, Options: o,
			Outputs: []string{"type=docker,name=" + SeedNames[variants.BackendProd] + ",dest=" + tar},
			Probe:   true, Push: true, Inspect: true, Progress: "plain", ProgressOut: v.BuildLog,
		})
		ck := Check{Command: fmt.Sprintf("ktrdr-images build --context %s --variant backend-prod --push --opt registry=%s --output type=docker,name=%s,dest=%s", v.ContextDir, o.Registry, SeedNames[variants.BackendProd], tar),
			Verdict: Pass, Detail: "backend-prod again, pushed and exported as a docker image tar by the same solve", Took: time.Since(start)}
		if err != nil {
			ck.Verdict, ck.Detail = Fail, err.Error()
		} else if len(rep2.Images) == 1 {
			for i := range rep.Images {
				if rep.Images[i].Variant == variants.BackendProd {
					rep.Images[i] = rep2.Images[0]
				}
			}
			if m := rep2.Measures[variants.BackendProd]; m != nil {
				rep.Measures[variants.BackendProd] = m
			}
		}
		v.record(ck)
		if err == nil {
			v.sh(ctx, 10*time.Minute, "docker load -i "+tar, prints("Loaded image: "+SeedNames[variants.BackendProd]))
			loadedID, _ = v.Docker.ImageID(ctx, SeedNames[variants.BackendProd])
		}
	}
	for _, n := range v.Variants {
		ref := refs[n]
		if ref == "" {
			continue
		}
		v.untagOld(ctx, ref)
		v.pull(ctx, ref)
		v.sh(ctx, time.Minute, "docker tag "+ref+" "+SeedNames[n], succeeds("named "+SeedNames[n]+" as the seed's docker build -t does"))
		if n == variants.BackendProd && loadedID != "" {
			pulledProd, _ = v.Docker.ImageID(ctx, ref)
		}
		v.sh(ctx, time.Minute, "docker rmi "+ref, prints("Untagged: "+ref))
	}
	if loadedID != "" {
		pulled := pulledProd
		ck := Check{Command: "docker image inspect --format '{{.Id}}' " + refs[variants.BackendProd] + " (before its docker rmi)", Output: "pulled: " + pulled + "\nloaded: " + loadedID}
		switch {
		case pulled == "":
			ck.Verdict, ck.Detail = Fail, "no id for the pulled image"
		case pulled == loadedID:
			ck.Verdict, ck.Detail = Pass, "docker load of the docker tar and docker pull from the registry give the same image id (the same config)"
		default:
			ck.Verdict, ck.Detail = Fail, "docker load and docker pull give different image ids"
		}
		v.record(ck)
	}
	return nil
}

// pull runs docker pull, once more if the first try fails: the engine
// pulls a worker-gpu of several GB over one connection per layer, and a
// layer download cut short (an unexpected EOF, a reset) fails the whole
// pull. The first failure is printed with its output and counted in the
// detail of the second try, never hidden.
func (v *verifier) pull(ctx context.Context, ref string) {
	line := "docker pull " + ref
	pctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	start := time.Now()
	out, err := v.Docker.Shell(pctx, v.WorkDir, line)
	cancel()
	verdict, detail := prints("Status: ")(out, err)
	if verdict == Pass {
		v.record(Check{Command: line, Output: out, Verdict: verdict, Detail: detail, Took: time.Since(start)})
		return
	}
	fmt.Fprintf(v.Out, "\n$ %s\n%s\n=> the first try failed (%s); trying once more\n", line, indent(shorten(strings.TrimRight(out, "\n"), 40)), detail)
	c := v.sh(ctx, 20*time.Minute, line, prints("Status: "))
	if c.Verdict == Pass {
		v.res.Checks[len(v.res.Checks)-1].Detail += " (on the second try; the first: " + detail + ")"
	}
}

func variantFlags(names []string) string {
	if len(names) == len(variants.Names()) {
		return "(all four variants)"
	}
	return "--variant " + strings.Join(names, " --variant ")
}

// untagOld removes what earlier pulls of ref's repository left in the
// engine: its untagged references by digest (older builds whose tag
// moved), so that docker images shows the seed's four names only.
func (v *verifier) untagOld(ctx context.Context, ref string) {
	repo := ref
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	out, err := v.Docker.Output(ctx, "images", "--digests", "--format", "{{.Tag}} {{.Digest}}", repo)
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if tag, dgst, ok := strings.Cut(strings.TrimSpace(line), " "); ok && tag == "<none>" && strings.HasPrefix(dgst, "sha256:") {
			v.Docker.Output(ctx, "rmi", repo+"@"+dgst)
		}
	}
}
