package variants

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	ourllb "github.com/ktrdr/ktrdr-images/llb"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Inputs are what Graphs reads besides the options: the project, its lock
// and the build context as LLB states.
type Inputs struct {
	Project *pyproject.Project
	Lock    *uvlock.Lock
	// Context is the build context with .dockerignore applied.
	Context llb.State
	// DepFiles holds pyproject.toml and uv.lock only, at its root.
	DepFiles llb.State
	// Exists reports whether a context path exists; variants' copied paths
	// are checked with it.
	Exists func(rel string) (bool, error)
	// ContextName names the context in errors (a directory, "context").
	ContextName string
	// Resolver resolves base image configs; nil plans without a daemon
	// (unpinned base images, the image config without the base's part).
	Resolver llb.ImageMetaResolver
	// Bases replace base images by reference (normalized), as a frontend's
	// named contexts (context:python-base=docker-image://...) do.
	Bases map[string]ourllb.Image
}

// Image is the graph of one variant's image and what it is made of.
type Image struct {
	Variant  Variant
	Name     string
	Platform ocispecs.Platform
	// State is the runtime image's filesystem.
	State llb.State
	// Config is the image config: the base's merged with the variant's.
	Config dockerspec.DockerOCIImage
	// Base is the runtime base image reference; BaseConfig its config
	// (empty when planning without a resolver).
	Base       string
	BaseConfig dockerspec.DockerOCIImage
	// Shared is true when the image is a merge of diff layers that other
	// variants with the same base and platform share; false when it falls
	// back to plain copies (its runtime base is not the builder's).
	Shared bool
	// Parts are the layers on top of the base, in order.
	Parts []ourllb.Part
	// Layers are the environment layers installed for it.
	Layers []ourllb.Layer
	// Pins are its resolved packages.
	Pins *uvlock.Resolution
}

// Graphs builds the LLB graph of each named variant (all when names is
// empty). Variants built together share one builder stage and every
// environment layer they have in common.
func Graphs(ctx context.Context, in Inputs, o Options, names []string) ([]Image, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = Names()
	}
	var vs []Variant
	for _, n := range names {
		v, err := Lookup(n)
		if err != nil {
			return nil, fmt.Errorf("option variant: %w", err)
		}
		vs = append(vs, v)
	}
	plat, _ := pep508.ParsePlatform(o.Platform) // checked by Validate
	b := ourllb.Build{Platform: plat, CacheNS: o.CacheNS, Epoch: o.SourceDateEpoch, Network: o.Network}

	// Check the context before anything else: a missing directory is the
	// user's most likely mistake and the cheapest to report.
	for _, v := range vs {
		for _, p := range v.Copy {
			ok, err := in.Exists(p)
			if err != nil {
				return nil, fmt.Errorf("variant %s: checking %s in the build context: %w", v.Name, p, err)
			}
			if !ok {
				return nil, fmt.Errorf("variant %s copies %s, which the build context %s does not have (it copies %s); check the context directory and its .dockerignore", v.Name, p, in.ContextName, strings.Join(v.Copy, ", "))
			}
		}
	}

	bases := map[string]ourllb.Image{}
	base := func(ref string) (ourllb.Image, error) {
		norm, err := ourllb.NormalizeRef("base image", ref)
		if err != nil {
			return ourllb.Image{}, err
		}
		if img, ok := bases[norm]; ok {
			return img, nil
		}
		if img, ok := in.Bases[norm]; ok {
			bases[norm] = img
			return img, nil
		}
		img, err := ourllb.BaseImage(ctx, in.Resolver, norm, b)
		if err != nil {
			return ourllb.Image{}, err
		}
		bases[norm] = img
		return img, nil
	}
	pyBase, err := base(o.PythonBase)
	if err != nil {
		return nil, err
	}
	// The uv image is checked now, so a missing one is an error naming the
	// options, not a failed step among the others; the build then checks
	// that its uv is the release uv-version names (llb.UV.Prepare).
	if uv, ok := o.installer().(ourllb.UV); ok && in.Resolver != nil {
		if _, _, _, err := in.Resolver.ResolveImageConfig(ctx, uv.ImageRef(), sourceresolver.Opt{
			LogName:  "resolve the uv image " + uv.ImageRef(),
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &plat},
		}); err != nil {
			// %v, not %w: an error wrapping the resolver's gRPC status
			// would reach the client as that status alone, losing this text.
			return nil, fmt.Errorf("options uv-image and uv-version: the uv image %s (uv %s) cannot be resolved: %v", uv.ImageRef(), uv.Version, err)
		}
	}
	env := o.env()
	env.Build = b
	env.DepFiles = in.DepFiles
	// The default index is the one the lock was made against (a mirror's
	// URL for a lock made with `uv lock --index-url MIRROR`), unless the
	// index-url option replaces it; PyPI is the installers' own default.
	env.LockIndex = in.Lock.DefaultRegistry()
	if env.IndexURL == "" && env.LockIndex != uvlock.DefaultIndex {
		env.IndexURL = env.LockIndex
	}
	builder := ourllb.NewBuilder(pyBase.State, o.Toolchain, o.installer(), env)
	runtimes := map[string]ourllb.Runtime{}

	var out []Image
	for _, v := range vs {
		img, err := graph(in, o, v, b, builder, pyBase.Ref, base, runtimes)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// graph builds one variant's image on the shared builder, whose base is
// builderRef.
func graph(in Inputs, o Options, v Variant, b ourllb.Build, builder ourllb.Builder, builderRef string, base func(string) (ourllb.Image, error), runtimes map[string]ourllb.Runtime) (Image, error) {
	name, err := o.ImageName(v)
	if err != nil {
		return Image{}, err
	}
	cudaBase := v.CUDABase && o.CUDABase != ""
	t := Target{Platform: o.Platform, Python: o.Python, CUDAFromBase: cudaBase, CPUIndex: o.CPUIndexURL, CUDAIndex: o.CUDAIndexURL,
		LockIndex: builder.Env.LockIndex}
	layers, res, err := envLayers(in.Project, in.Lock, v, t)
	if err != nil {
		return Image{}, err
	}
	rtRef := o.PythonBase
	if cudaBase {
		rtRef = o.CUDABase
	}
	rtBase, err := base(rtRef)
	if err != nil {
		return Image{}, fmt.Errorf("variant %s: %w", v.Name, err)
	}
	rt, ok := runtimes[rtBase.Ref]
	if !ok {
		rt = ourllb.NewRuntime(rtBase.State, digest.FromString(rtRef).Encoded()[:12], builder.Env.User, o.RuntimePackages, b)
		runtimes[rtBase.Ref] = rt
	}

	chain := []ourllb.Part{{Name: "toolchain", State: builder.Toolchain}, {Name: "venv", State: builder.Venv}}
	for i, st := range builder.Grow(layers) {
		chain = append(chain, ourllb.Part{Name: "env " + layers[i].Name, State: st})
	}
	last := chain[len(chain)-1].State
	envLast := last
	hasProject := len(v.Copy) > 0 || v.InstallProject
	if hasProject {
		full := layers[len(layers)-1].Sync
		proj := builder.WithProject(last, ourllb.Project{Context: in.Context, Paths: v.Copy, Install: v.InstallProject, Sync: full})
		chain = append(chain, ourllb.Part{Name: "project", State: proj})
		last = proj
	}

	img := Image{Variant: v, Name: name, Platform: b.Platform, Base: rtBase.Ref, BaseConfig: rtBase.Config, Layers: layers, Pins: res}
	switch {
	case o.Plain:
		img.Parts, img.State = ourllb.Plain(rt, last, builder.Env)
	case rtBase.Ref == builderRef:
		img.Shared = true
		img.Parts, img.State = ourllb.Merged(rt, chain)
	default:
		img.Parts, img.State = ourllb.Copied(rt, envLast, last, hasProject, builder.Env)
	}
	img.Config = ourllb.MergeConfig(rtBase.Config, imageConfig(in, o, v, name, rtBase.Ref), b.Platform, o.SourceDateEpoch)
	return img, nil
}

func imageConfig(in Inputs, o Options, v Variant, name, baseRef string) ourllb.ImageConfig {
	port := o.port(v)
	venv := o.env().VenvDir
	labels := map[string]string{
		"org.opencontainers.image.title":       imageTitle(name),
		"org.opencontainers.image.description": v.Description,
		"org.opencontainers.image.version":     in.Project.Version,
		"org.opencontainers.image.base.name":   baseRef,
	}
	if o.SourceDateEpoch != nil {
		labels["org.opencontainers.image.created"] = o.SourceDateEpoch.Format(time.RFC3339)
	}
	for k, val := range o.Labels {
		labels[k] = val
	}
	health := fmt.Sprintf("curl -fs http://localhost:%d%s || exit 1", port, v.HealthPath)
	return ourllb.ImageConfig{
		User:         o.User,
		WorkingDir:   o.AppDir,
		Env:          []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "VIRTUAL_ENV=" + venv},
		PathPrepend:  []string{venv + "/bin"},
		ExposedPorts: []string{fmt.Sprintf("%d/tcp", port)},
		Healthcheck: &dockerspec.HealthcheckConfig{
			Test:        []string{"CMD-SHELL", health},
			Interval:    30 * time.Second,
			Timeout:     10 * time.Second,
			StartPeriod: 30 * time.Second,
			Retries:     3,
		},
		Volumes:    v.Volumes,
		Entrypoint: []string{"/usr/bin/tini", "--"},
		Cmd:        v.Command(o.app(v), port),
		Labels:     labels,
	}
}

func imageTitle(ref string) string {
	name := ref
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return path.Base(name)
}

// envLayers splits a variant's pinned set into stacked layers: the
// runtime dependencies (no extras, no groups), then what its extras add in
// its torch flavour, then what its groups add. Each layer's content depends
// only on the lock and on that prefix of the selection, so variants whose
// selections start alike get identical layers. When a later set changes the
// version of a package of an earlier one, stacking is impossible and the
// variant gets one layer with everything.
func envLayers(proj *pyproject.Project, lock *uvlock.Lock, v Variant, t Target) ([]ourllb.Layer, *uvlock.Resolution, error) {
	full, err := v.Pins(proj, lock, t)
	if err != nil {
		return nil, nil, err
	}
	type step struct {
		name string
		v    Variant
	}
	var steps []step
	deps := Variant{Name: v.Name, Torch: uvlock.FlavourNone}
	steps = append(steps, step{"deps", deps})
	if len(v.Extras) > 0 {
		x := Variant{Name: v.Name, Extras: v.Extras, Torch: v.Torch}
		steps = append(steps, step{strings.Join(v.Extras, "+") + "-" + string(v.Torch), x})
	}
	if len(v.Groups) > 0 {
		steps = append(steps, step{strings.Join(v.Groups, "+"), v})
	}
	var sets []*uvlock.Resolution
	for i, s := range steps {
		if i == len(steps)-1 {
			sets = append(sets, full)
			continue
		}
		r, err := s.v.Pins(proj, lock, t)
		if err != nil {
			// The project's runtime dependencies themselves need torch:
			// there is no torch-free first layer.
			if i == 0 && v.Torch != uvlock.FlavourNone {
				deps.Torch = v.Torch
				if r, err = deps.Pins(proj, lock, t); err == nil {
					sets = append(sets, r)
					continue
				}
			}
			return nil, nil, err
		}
		sets = append(sets, r)
	}

	var layers []ourllb.Layer
	var prev map[string]uvlock.Pin
	for i, s := range steps {
		cur := map[string]uvlock.Pin{}
		for _, p := range sets[i].Pins {
			cur[p.Name] = p
		}
		var added []uvlock.Pin
		for _, p := range sets[i].Pins {
			if q, ok := prev[p.Name]; ok {
				if q.Version != p.Version || q.Index != p.Index {
					// Not a superset: no stacking for this variant.
					return []ourllb.Layer{layerOf("all", v, full, full.Pins, t)}, full, nil
				}
				continue
			}
			added = append(added, p)
		}
		for n := range prev {
			if _, ok := cur[n]; !ok {
				return []ourllb.Layer{layerOf("all", v, full, full.Pins, t)}, full, nil
			}
		}
		if len(added) > 0 || i == 0 {
			layers = append(layers, layerOf(s.name, s.v, sets[i], added, t))
		}
		prev = cur
	}
	return layers, full, nil
}

// layerOf describes one layer: pins for pip, the cumulative uv selection
// for uv, and a cache key that separates torch flavours and CUDA modes.
func layerOf(name string, sel Variant, res *uvlock.Resolution, added []uvlock.Pin, t Target) ourllb.Layer {
	l := ourllb.Layer{Name: name, CacheKey: string(res.Flavour.Flavour)}
	if t.CUDAFromBase && res.Flavour.Flavour == uvlock.FlavourCUDA {
		l.CacheKey += "-cudabase"
	}
	extras := slices.Clone(sel.Extras)
	if res.Flavour.Extra != "" {
		extras = append(extras, res.Flavour.Extra)
	}
	l.Sync = ourllb.Selection{Extras: extras, Groups: slices.Clone(sel.Groups)}
	// uv must not install what the flavour left out, nor what comes from
	// another index than the lock's (it is installed by version after).
	skip := map[string]bool{}
	for _, p := range res.Dropped {
		skip[p.Name] = true
	}
	for _, p := range added {
		r := ourllb.Requirement{Name: p.Name, Version: p.Version, Hashes: p.Hashes}
		// A package of the lock's default index takes the installer's
		// default index (the index-url option, a mirror, replaces it);
		// one from another index (a CPU torch) names it.
		if p.Index != "" && p.Index != uvlock.DefaultIndex && p.Index != t.LockIndex {
			r.Index = p.Index
		}
		if p.Index != p.Source.Registry {
			r.OutsideLock = true
		}
		l.Requirements = append(l.Requirements, r)
	}
	for _, p := range res.Pins {
		if p.Index != p.Source.Registry {
			skip[p.Name] = true
		}
	}
	for n := range skip {
		l.Sync.NoInstall = append(l.Sync.NoInstall, n)
	}
	sort.Strings(l.Sync.NoInstall)
	return l
}
