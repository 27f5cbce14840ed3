package build

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/internal/probe"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	commonexptypes "github.com/moby/buildkit/exporter/exptypes"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Solved is one variant solved on a gateway: its graph, its probe results
// and the gateway result the image exporter turns into an image.
type Solved struct {
	Image  variants.Image
	Probes []probe.Result
	Result *gwclient.Result
	// SBOM is the image's SPDX document when one was asked for;
	// Attestations what goes into its attestation manifest (the SBOM when
	// attached), keyed by the caller under the image's platform.
	SBOM         []byte
	Attestations []gwclient.Attestation
	// SolveTime is how long the graph's solve took (its cached part is
	// quick), ProbeTime the probes (under emulation for a foreign
	// platform).
	SolveTime, ProbeTime time.Duration
}

// ProbeError is returned when an image was built but a probe failed: the
// image must not be exported.
type ProbeError struct {
	Variant string
	// Platform is set when the image was built for several platforms.
	Platform string
	Failed   []probe.Result
}

func (e *ProbeError) Error() string {
	var parts []string
	for _, f := range e.Failed {
		parts = append(parts, f.Name+": "+f.Detail)
	}
	what := "variant " + e.Variant
	if e.Platform != "" {
		what += " (" + e.Platform + ")"
	}
	return fmt.Sprintf("%s: %d probe(s) failed, the image is not exported: %s", what, len(e.Failed), strings.Join(parts, "; "))
}

// CacheImports reads the cache imports a client passed (buildctl's
// --import-cache, dockerui's cache-imports) from the gateway's options.
func CacheImports(gw gwclient.Client) ([]gwclient.CacheOptionsEntry, error) {
	s := gw.BuildOpts().Opts["cache-imports"]
	if s == "" {
		return nil, nil
	}
	var out []gwclient.CacheOptionsEntry
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("option cache-imports %q: %w", s, err)
	}
	return out, nil
}

// SolveOptions tune one solve.
type SolveOptions struct {
	// Probe checks the image from the inside before returning it.
	Probe bool
	// NoCache solves every vertex again.
	NoCache bool
	// SBOM writes the image's SPDX document (Solved.SBOM); AttachSBOM
	// also attaches it to the image as an in-toto attestation.
	SBOM, AttachSBOM bool
	// Indexed says the export makes an index (attestations or several
	// platforms): the OCI annotations then go on the index too.
	Indexed bool
}

// Solve builds one variant on the gateway: the graph with base images
// resolved through gw, solved and evaluated, then probed from the inside
// when asked. A failed probe returns the Solved (with the results) and a
// *ProbeError, and no result to export.
func Solve(ctx context.Context, gw gwclient.Client, in variants.Inputs, o variants.Options, variant string, so SolveOptions) (*Solved, error) {
	if in.Resolver == nil {
		in.Resolver = gw
	}
	// A daemon without the diff and merge ops (BuildKit < v0.10, as in
	// Docker engines before 23.0) gets images assembled by plain copies.
	caps := gw.BuildOpts().LLBCaps
	if caps.Supports(pb.CapDiffOp) != nil || caps.Supports(pb.CapMergeOp) != nil {
		o.Plain = true
	}
	images, err := variants.Graphs(ctx, in, o, []string{variant})
	if err != nil {
		return nil, err
	}
	img := images[0]
	imports, err := CacheImports(gw)
	if err != nil {
		return nil, err
	}
	mopts := []llb.ConstraintsOpt{llb.Platform(img.Platform)}
	if so.NoCache {
		mopts = append(mopts, llb.IgnoreCache)
	}
	def, err := img.State.Marshal(ctx, mopts...)
	if err != nil {
		return nil, fmt.Errorf("variant %s: marshaling the graph: %w", variant, err)
	}
	start := time.Now()
	res, err := gw.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), CacheImports: imports, Evaluate: true})
	if err != nil {
		return nil, fmt.Errorf("variant %s: %w", variant, err)
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, fmt.Errorf("variant %s: %w", variant, err)
	}
	s := &Solved{Image: img, SolveTime: time.Since(start)}
	if so.Probe {
		start = time.Now()
		s.Probes, err = runProbes(ctx, gw, in, o, img, ref, imports)
		s.ProbeTime = time.Since(start)
		if err != nil {
			return s, fmt.Errorf("variant %s: probing: %w", variant, err)
		}
		if failed := probe.Failed(s.Probes); len(failed) > 0 {
			return s, &ProbeError{Variant: variant, Failed: failed}
		}
	}
	out := gwclient.NewResult()
	out.SetRef(ref)
	if so.SBOM || so.AttachSBOM {
		s.SBOM, err = makeSBOM(ctx, ref, img, o, in)
		if err != nil {
			return nil, fmt.Errorf("variant %s: SBOM: %w", variant, err)
		}
	}
	if so.AttachSBOM {
		att, err := sbomAttestation(ctx, gw, s.SBOM, o.SourceDateEpoch)
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", variant, err)
		}
		s.Attestations = append(s.Attestations, att)
		out.AddAttestation(platformKey(img.Platform), att)
	}
	if o.Annotations {
		for _, k := range variants.OCIAnnotationKeys {
			v, ok := img.Config.Config.Labels[k]
			if !ok {
				continue
			}
			out.AddMeta(exptypes.AnnotationManifestKey(nil, k), []byte(v))
			if so.Indexed || so.AttachSBOM {
				out.AddMeta(exptypes.AnnotationIndexKey(k), []byte(v))
			}
		}
	}
	cfg, err := json.Marshal(img.Config)
	if err != nil {
		return nil, err
	}
	out.AddMeta(exptypes.ExporterImageConfigKey, cfg)
	if baseCfg, err := json.Marshal(img.BaseConfig); err == nil {
		out.AddMeta(exptypes.ExporterImageBaseConfigKey, baseCfg)
	}
	if o.SourceDateEpoch != nil {
		out.AddMeta(commonexptypes.ExporterEpochKey, []byte(strconv.FormatInt(o.SourceDateEpoch.Unix(), 10)))
	}
	s.Result = out
	return s, nil
}

// platformKey is the key BuildKit's exporter finds a single-platform
// result's attestations under (exptypes.ParsePlatforms).
func platformKey(p ocispecs.Platform) string {
	return platforms.FormatAll(platforms.Normalize(p))
}

// Spec derives what the probes check from the variant and the options.
func Spec(img variants.Image, o variants.Options) probe.Spec {
	v := img.Variant
	port := img.Config.Config.ExposedPorts
	machine := ""
	if env, err := pep508.EnvironmentFor(img.Platform, o.Python); err == nil {
		machine = env.PlatformMachine
	}
	spec := probe.Spec{
		Machine:      machine,
		User:         o.User,
		UID:          o.UID,
		GID:          o.GID,
		AppDir:       o.AppDir,
		Absent:       absent(o.AppDir, v.Absent),
		Torch:        string(v.Torch),
		HealthPath:   v.HealthPath,
		HealthExpect: v.HealthExpect,
		Tools:        v.Tools,
		Command:      v.Check,
		BaseEnv:      img.BaseConfig.Config.Env,
		Labels:       []string{"org.opencontainers.image.title", "org.opencontainers.image.version", "org.opencontainers.image.description"},
		Volumes:      v.Volumes,
	}
	// An image of another platform than this process's runs under
	// emulation, several times slower: its server gets longer to answer.
	if img.Platform.Architecture != runtime.GOARCH {
		spec.ServerTimeout = 4 * time.Minute
	}
	if img.Pins != nil {
		spec.Distributions = map[string]string{}
		for _, p := range img.Pins.Pins {
			spec.Distributions[p.Name] = p.Version
		}
		if v.InstallProject && img.Pins.Root != nil {
			spec.Distributions[img.Pins.Root.Name] = img.Pins.Root.Version
		}
		// What the torch flavour left out because a CUDA base image
		// provides it (the nvidia-* wheels).
		if img.Pins.Flavour.CUDAFromBase {
			spec.Provided = map[string]bool{}
			for _, p := range img.Pins.Dropped {
				spec.Provided[p.Name] = true
			}
		}
	}
	for _, m := range v.RunMounts {
		spec.Mounted = append(spec.Mounted, path.Join(o.AppDir, m))
	}
	for p := range port {
		if n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp")); err == nil {
			spec.Port = n
		}
	}
	return spec
}

func absent(appDir string, rel []string) []string {
	var out []string
	for _, r := range rel {
		out = append(out, path.Join(appDir, r))
	}
	return out
}

func runProbes(ctx context.Context, gw gwclient.Client, in variants.Inputs, o variants.Options, img variants.Image, ref gwclient.Reference, imports []gwclient.CacheOptionsEntry) ([]probe.Result, error) {
	pimg := probe.Image{Ref: ref, Config: img.Config, Platform: img.Platform}
	if len(img.Variant.RunMounts) > 0 {
		def, err := in.Context.Marshal(ctx)
		if err != nil {
			return nil, err
		}
		cr, err := gw.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), CacheImports: imports, Evaluate: true})
		if err != nil {
			return nil, fmt.Errorf("reading the context for the run-time mounts: %w", err)
		}
		cref, err := cr.SingleRef()
		if err != nil {
			return nil, err
		}
		for _, m := range img.Variant.RunMounts {
			pimg.Mounts = append(pimg.Mounts, gwclient.Mount{
				Dest: path.Join(o.AppDir, m), Ref: cref, Selector: "/" + m, Readonly: true, MountType: pb.MountType_BIND,
			})
		}
	}
	c, err := probe.Start(ctx, gw, pimg)
	if err != nil {
		return nil, err
	}
	defer c.Release(context.WithoutCancel(ctx))
	return probe.Check(ctx, c, img.Config, Spec(img, o)), nil
}
