package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// WorkerPlatform asks buildkitd at addr for its workers and checks that
// they run every platform of plats (natively or under emulation), before
// anything is built. It returns the daemon's native platform (its first
// worker's first platform), where packages are installed.
func WorkerPlatform(ctx context.Context, c *client.Client, addr string, plats []string) (ocispecs.Platform, error) {
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("buildkitd at %s: listing its workers: %w", addr, err)
	}
	var have [][]ocispecs.Platform
	for _, w := range ws {
		have = append(have, w.Platforms)
	}
	return CheckWorkerPlatforms("buildkitd at "+addr, have, plats)
}

// CheckWorkerPlatforms checks that the workers (each one's platforms, the
// first native) run every requested platform, and returns the first
// worker's native platform. daemon names the daemon in errors.
func CheckWorkerPlatforms(daemon string, workers [][]ocispecs.Platform, plats []string) (ocispecs.Platform, error) {
	var all []ocispecs.Platform
	for _, ps := range workers {
		all = append(all, ps...)
	}
	if len(all) == 0 {
		return ocispecs.Platform{}, fmt.Errorf("%s reports no worker platforms", daemon)
	}
	native := platforms.Normalize(workers[0][0])
	for _, s := range plats {
		want, err := platforms.Parse(s)
		if err != nil {
			return native, fmt.Errorf("option --platform: %q: %w", s, err)
		}
		want = platforms.Normalize(want)
		ok := false
		for _, h := range all {
			h = platforms.Normalize(h)
			if h.OS == want.OS && h.Architecture == want.Architecture {
				ok = true
			}
		}
		if !ok {
			var names []string
			for _, h := range all {
				names = append(names, platforms.Format(h))
			}
			return native, fmt.Errorf("platform %s: %s cannot run %s steps (its workers run %s), and a %s image's venv is made and probed on %s: "+
				"register QEMU user emulation with binfmt_misc (Debian: apt-get install qemu-user-static binfmt-support; elsewhere: docker run --privileged --rm tonistiigi/binfmt --install %s), "+
				"then restart buildkitd, which lists the platforms it can emulate when it starts; nothing was built",
				s, daemon, s, strings.Join(names, ", "), s, s, want.Architecture)
		}
	}
	return native, nil
}

// SolvePlatforms solves one variant for each platform, concurrently on
// the gateway, each probed before anything is returned, and makes the
// result to export: for one platform, that platform's result as Solve made
// it (the same digests as before platform lists existed); for several,
// one result with a reference per platform, which the image exporters
// turn into one OCI index. A platform that fails fails the whole: its
// error names the platform, and nothing is returned to export.
func SolvePlatforms(ctx context.Context, gw gwclient.Client, in variants.Inputs, o variants.Options, variant string, plats []string, so SolveOptions) ([]*Solved, *gwclient.Result, error) {
	if len(plats) <= 1 {
		po := o
		if len(plats) == 1 {
			po.Platform = plats[0]
		}
		s, err := Solve(ctx, gw, in, po, variant, so)
		var ss []*Solved
		if s != nil {
			ss = []*Solved{s}
		}
		if err != nil {
			return ss, nil, err
		}
		return ss, s.Result, nil
	}
	so.Indexed = true
	out := make([]*Solved, len(plats))
	errs := make([]error, len(plats))
	var wg sync.WaitGroup
	for i, p := range plats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			po := o
			po.Platform = p
			s, err := Solve(ctx, gw, in, po, variant, so)
			out[i] = s
			var pe *ProbeError
			if errors.As(err, &pe) {
				pe.Platform = p
			} else if err != nil {
				err = fmt.Errorf("platform %s: %w", p, err)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var ss []*Solved
	for _, s := range out {
		if s != nil {
			ss = append(ss, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ss, nil, err
	}
	res, err := combine(ss)
	return ss, res, err
}

// combine makes one multi-platform result of single-platform ones, as
// BuildKit's image exporter reads it: a reference, an image config and a
// base config per platform ID, the platforms' list (in the order given),
// each platform's attestations under its ID, manifest annotations per
// platform, and the index annotations and epoch once.
func combine(ss []*Solved) (*gwclient.Result, error) {
	out := gwclient.NewResult()
	var list exptypes.Platforms
	for _, s := range ss {
		p := platforms.Normalize(s.Image.Platform)
		id := platforms.FormatAll(p)
		ref, err := s.Result.SingleRef()
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", id, err)
		}
		out.AddRef(id, ref)
		for k, v := range s.Result.Metadata {
			switch {
			case k == exptypes.ExporterImageConfigKey || k == exptypes.ExporterImageBaseConfigKey:
				out.AddMeta(k+"/"+id, v)
			case strings.HasPrefix(k, exptypes.AnnotationManifestKey(nil, "")):
				out.AddMeta(exptypes.AnnotationManifestKey(&p, strings.TrimPrefix(k, exptypes.AnnotationManifestKey(nil, ""))), v)
			default:
				out.AddMeta(k, v)
			}
		}
		for _, a := range s.Attestations {
			out.AddAttestation(id, a)
		}
		list.Platforms = append(list.Platforms, exptypes.Platform{ID: id, Platform: p})
	}
	dt, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	out.AddMeta(exptypes.ExporterPlatformsKey, dt)
	return out, nil
}
