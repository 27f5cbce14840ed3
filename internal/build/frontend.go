package build

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/platforms"
	ourllb "github.com/ktrdr/ktrdr-images/llb"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/subrequests/outline"
	"github.com/moby/buildkit/frontend/subrequests/targets"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Frontend is the gateway frontend's build function (cmd/frontend): the
// same Solve as the CLI's, with the request read through BuildKit's
// dockerui package, as the Dockerfile frontend reads it: target (the
// variant), build args (the options), platforms, labels, no-cache, cache
// imports, named contexts for the base images, and the main context with
// .dockerignore applied. It answers the frontend.targets and
// frontend.outline subrequests.
func Frontend(ctx context.Context, c gwclient.Client) (*gwclient.Result, error) {
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return nil, err
	}
	// The images are the project's spec: the context is read for any
	// request, a subrequest (targets, outline) included.
	var (
		inOnce sync.Once
		in     variants.Inputs
		inErr  error
	)
	inputs := func(ctx context.Context) (variants.Inputs, error) {
		inOnce.Do(func() { in, inErr = frontendInputs(ctx, bc, c) })
		return in, inErr
	}
	if res, handled, err := bc.HandleSubrequest(ctx, dockerui.RequestHandler{
		ListTargets: func(ctx context.Context) (*targets.List, error) {
			in, err := inputs(ctx)
			if err != nil {
				return nil, err
			}
			return listTargets(in.Spec), nil
		},
		Outline: func(ctx context.Context) (*outline.Outline, error) {
			in, err := inputs(ctx)
			if err != nil {
				return nil, err
			}
			return describe(in.Spec, bc.Target)
		},
	}); handled {
		return res, err
	}
	o, probe, err := OptionsFromBuildArgs(bc.BuildArgs)
	if err != nil {
		return nil, err
	}
	if _, err := inputs(ctx); err != nil {
		return nil, err
	}
	v, err := in.Spec.Lookup(bc.Target)
	if err != nil {
		if bc.Target == "" {
			return nil, fmt.Errorf("no target: set the target (--target, or target= in bake) to one of %s", strings.Join(in.Spec.Names(), ", "))
		}
		return nil, fmt.Errorf("target: %w", err)
	}
	if o, err = in.Spec.Apply(o); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// The platforms asked for (docker buildx build --platform, buildctl
	// --opt platform=): each checked against the variant's lock and the
	// daemon's workers before anything is built. Packages are installed
	// on the daemon's native platform (the first of its workers').
	plats := []string{o.Platform}
	if len(bc.TargetPlatforms) > 0 {
		plats = nil
		for _, p := range bc.TargetPlatforms {
			plats = append(plats, platforms.Format(p))
		}
	}
	if err := variants.CheckPlatforms("platform", in, o, []variants.Variant{v}, plats); err != nil {
		return nil, err
	}
	var workers [][]ocispecs.Platform
	for _, w := range c.BuildOpts().Workers {
		workers = append(workers, w.Platforms)
	}
	if len(workers) == 0 {
		workers = [][]ocispecs.Platform{bc.BuildPlatforms}
	}
	buildPlat, err := CheckWorkerPlatforms("this buildkitd", workers, plats)
	if err != nil {
		return nil, err
	}
	in.BuildPlatform = &buildPlat
	// docker buildx build --network host: every step on the host's
	// network, as the Dockerfile frontend's RUN steps (needs the
	// network.host entitlement, --allow network.host).
	o.Network = bc.NetworkMode
	for k, val := range bc.Labels {
		o.Labels[k] = val
	}
	// attest:sbom (docker buildx build --sbom=true, buildctl --opt
	// attest:sbom=): the SPDX document is made here, from the lock, and
	// attached, so BuildKit's own SBOM step (which would pull a scanner
	// image) finds one and does nothing.
	so := SolveOptions{Probe: probe, NoCache: bc.IsNoCache(""), AttachSBOM: bc.SBOM != nil}
	so.Indexed = bc.MultiPlatformRequested || so.AttachSBOM || c.BuildOpts().Opts["attest:provenance"] != ""
	var (
		mu     sync.Mutex
		solved = map[string]*Solved{}
	)
	rb, err := bc.Build(ctx, func(ctx context.Context, platform *ocispecs.Platform, idx int) (*dockerui.BuildResult, error) {
		po := o
		if platform != nil {
			po.Platform = platforms.Format(*platform)
		}
		pin := in
		bases, err := namedBases(ctx, bc, po, platform)
		if err != nil {
			return nil, err
		}
		pin.Bases = bases
		if pp, _ := pep508.ParsePlatform(po.Platform); pp.Architecture != buildPlat.Architecture {
			// A cross build installs on the build platform's python
			// base: the named context's image for that platform.
			if pin.BuildBases, err = namedBases(ctx, bc, po, &buildPlat); err != nil {
				return nil, err
			}
		}
		s, err := Solve(ctx, c, pin, po, v.Name, so)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		solved[platformKey(s.Image.Platform)] = s
		mu.Unlock()
		ref, err := s.Result.SingleRef()
		if err != nil {
			return nil, err
		}
		img, base := s.Image.Config, s.Image.BaseConfig
		return &dockerui.BuildResult{Reference: ref, Image: &img, BaseImage: &base, Epoch: po.SourceDateEpoch}, nil
	})
	if err != nil {
		return nil, err
	}
	// The result builder made a result of its own: carry each platform's
	// attestations and annotations over to it.
	if err := rb.EachPlatform(ctx, func(ctx context.Context, id string, p ocispecs.Platform) error {
		mu.Lock()
		s := solved[platformKey(p)]
		mu.Unlock()
		if s == nil {
			return fmt.Errorf("platform %s: no image was built for it", id)
		}
		for _, a := range s.Attestations {
			rb.AddAttestation(id, a)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, s := range solved {
		for k, v := range s.Result.Metadata {
			if strings.HasPrefix(k, "annotation") {
				rb.AddMeta(k, v)
			}
		}
	}
	return rb.Finalize()
}

// predefinedArgs are build args clients send on their own; they are not
// ktrdr-images options.
var predefinedArgs = map[string]bool{
	"http_proxy": true, "https_proxy": true, "ftp_proxy": true, "no_proxy": true, "all_proxy": true,
}

// OptionsFromBuildArgs turns build args into options: PYTHON_BASE and
// python-base both set python-base, port.worker-cpu sets that option as
// is; PROBE=false turns the probes off. An unknown build arg is an error
// listing the valid ones.
func OptionsFromBuildArgs(args map[string]string) (variants.Options, bool, error) {
	o := variants.DefaultOptions()
	probe := true
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := args[k]
		lk := strings.ToLower(k)
		// Clients' own args, and empty values (an unset bake variable)
		// leave the option at its default.
		if predefinedArgs[lk] || strings.HasPrefix(k, "BUILDKIT_") || val == "" {
			continue
		}
		key := k
		if !strings.Contains(k, ".") {
			key = strings.ReplaceAll(lk, "_", "-")
		}
		if key == "probe" {
			b, err := strconv.ParseBool(val)
			if err != nil {
				return o, false, fmt.Errorf("build-arg %s=%q: expected true or false", k, val)
			}
			probe = b
			continue
		}
		if err := o.Set(key, val); err != nil {
			return o, false, fmt.Errorf("build-arg %s: %w", k, err)
		}
	}
	return o, probe, o.Validate()
}

// namedBases loads the named contexts python-base and cuda-base, when the
// client gave them, as replacements of those base images.
func namedBases(ctx context.Context, bc *dockerui.Client, o variants.Options, platform *ocispecs.Platform) (map[string]ourllb.Image, error) {
	out := map[string]ourllb.Image{}
	for name, ref := range map[string]string{"python-base": o.PythonBase, "cuda-base": o.CUDABase} {
		if ref == "" {
			continue
		}
		nc, err := bc.NamedContext(name, dockerui.ContextOpt{Platform: platform})
		if err != nil {
			return nil, fmt.Errorf("named context %s: %w", name, err)
		}
		if nc == nil {
			continue
		}
		st, img, err := nc.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("named context %s: %w", name, err)
		}
		norm, err := ourllb.NormalizeRef("option "+name, ref)
		if err != nil {
			return nil, err
		}
		b := ourllb.Image{Ref: "context:" + name, State: *st, Resolved: img != nil}
		if img != nil {
			b.Config = *img
		}
		out[norm] = b
	}
	return out, nil
}

func listTargets(spec *variants.Spec) *targets.List {
	l := &targets.List{}
	for _, v := range spec.Variants {
		l.Targets = append(l.Targets, targets.Target{Name: v.Name, Description: v.Description, Default: v.Name == spec.DefaultTarget})
	}
	return l
}

func describe(spec *variants.Spec, target string) (*outline.Outline, error) {
	name := target
	desc := "ktrdr-images: the images of " + spec.Path + ", built from LLB, no Dockerfile"
	if target != "" {
		v, err := spec.Lookup(target)
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		desc = v.Description
	}
	out := &outline.Outline{Name: name, Description: desc}
	def, err := spec.Apply(variants.DefaultOptions())
	if err != nil {
		return nil, err
	}
	defaults := map[string]string{
		"platform": def.Platform, "python-version": def.Python, "python-base": def.PythonBase,
		"installer": def.Installer, "uv-version": def.UVVersion, "cpu-index-url": def.CPUIndexURL,
		"user": def.User, "app-dir": def.AppDir,
	}
	for _, kv := range variants.OptionKeys() {
		out.Args = append(out.Args, outline.Arg{Name: kv[0], Description: kv[1], Value: defaults[kv[0]]})
	}
	out.Args = append(out.Args, outline.Arg{Name: "probe", Description: "probe the image from the inside before returning it", Value: "true"})
	return out, nil
}

// frontendInputs reads the project from the main context: pyproject.toml
// and uv.lock alone first (small), then the whole context for the variants'
// copied paths.
func frontendInputs(ctx context.Context, bc *dockerui.Client, c gwclient.Client) (variants.Inputs, error) {
	main, err := bc.MainContext(ctx)
	if err != nil {
		return variants.Inputs{}, err
	}
	deps, err := bc.MainContext(ctx, llb.IncludePatterns([]string{pyproject.FileName, uvlock.FileName}))
	if err != nil {
		return variants.Inputs{}, err
	}
	depRef, err := solveState(ctx, c, *deps)
	if err != nil {
		return variants.Inputs{}, fmt.Errorf("reading the build context: %w", err)
	}
	read := func(name string) ([]byte, error) {
		dt, err := depRef.ReadFile(ctx, gwclient.ReadRequest{Filename: name})
		if err != nil {
			return nil, fmt.Errorf("%s: not in the build context (is it excluded by .dockerignore?): %w", name, err)
		}
		return dt, nil
	}
	pdt, err := read(pyproject.FileName)
	if err != nil {
		return variants.Inputs{}, err
	}
	proj, err := pyproject.Parse(pyproject.FileName, pdt)
	if err != nil {
		return variants.Inputs{}, err
	}
	ldt, err := read(uvlock.FileName)
	if err != nil {
		return variants.Inputs{}, fmt.Errorf("%w; run `uv lock` and add %s to the build context", err, uvlock.FileName)
	}
	lock, err := uvlock.Parse(uvlock.FileName, ldt)
	if err != nil {
		return variants.Inputs{}, err
	}
	if err := uvlock.Check(proj, lock); err != nil {
		return variants.Inputs{}, err
	}
	spec, err := variants.LoadSpec(proj, lock)
	if err != nil {
		return variants.Inputs{}, err
	}
	// The whole context is solved once, on first use, whatever the number
	// of platforms asking.
	var (
		once    sync.Once
		mainRef gwclient.Reference
		mainErr error
	)
	exists := func(rel string) (bool, error) {
		once.Do(func() { mainRef, mainErr = solveState(ctx, c, *main) })
		if mainErr != nil {
			return false, mainErr
		}
		if _, err := mainRef.StatFile(ctx, gwclient.StatRequest{Path: rel}); err != nil {
			return false, nil
		}
		if err := refLinksOut(ctx, mainRef, rel, "(the main build context)"); err != nil {
			return false, err
		}
		return true, nil
	}
	return variants.Inputs{
		Project:     proj,
		Lock:        lock,
		Spec:        spec,
		Context:     *main,
		Exists:      exists,
		ContextName: "(the main build context)",
	}, nil
}

func solveState(ctx context.Context, c gwclient.Client, st llb.State) (gwclient.Reference, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	if err != nil {
		return nil, err
	}
	return res.SingleRef()
}
