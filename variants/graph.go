package variants

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/containerd/platforms"
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
	// Spec is the application's images (LoadSpec); nil: KTRDR's four
	// (DefaultSpec).
	Spec *Spec
	// Context is the build context with .dockerignore applied.
	Context llb.State
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
	// BuildPlatform is the platform the daemon runs steps on natively (its
	// worker's first platform); nil: linux/amd64. A target of another
	// platform gets a cross builder (ourllb.NewCrossBuilder): its packages
	// are installed natively, for the target. BuildBases are Bases for the
	// build platform.
	BuildPlatform *ocispecs.Platform
	BuildBases    map[string]ourllb.Image
}

// uvPythonPlatforms are uv's --python-platform values for the targets: the
// newest manylinux uv 0.9 knows that the python base's glibc (Debian
// trixie: 2.41) runs.
var uvPythonPlatforms = map[string]string{
	"linux/amd64": "x86_64-manylinux_2_40",
	"linux/arm64": "aarch64-manylinux_2_40",
}

// samePlatform reports whether a daemon of platform build runs steps of
// platform target natively (linux/amd64 does not run linux/arm64).
func samePlatform(build, target ocispecs.Platform) bool {
	return build.OS == target.OS && build.Architecture == target.Architecture
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
	// Packages are its package layers, as assigned (AssignLayers), and
	// Layers the same as the installer installs them.
	Packages []PackageLayer
	Layers   []ourllb.Layer
	// Pins are its resolved packages.
	Pins *uvlock.Resolution
}

// Graphs builds the LLB graph of each named variant (all when names is
// empty). Variants built together share one builder stage and every
// environment layer they have in common.
func Graphs(ctx context.Context, in Inputs, o Options, names []string) ([]Image, error) {
	spec := in.Spec
	if spec == nil {
		spec = DefaultSpec()
	}
	o, err := spec.Apply(o)
	if err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = spec.Names()
	}
	var vs []Variant
	for _, n := range names {
		v, err := spec.Lookup(n)
		if err != nil {
			return nil, fmt.Errorf("option variant: %w", err)
		}
		vs = append(vs, v)
	}
	plat, _ := pep508.ParsePlatform(o.Platform) // checked by Validate
	b := ourllb.Build{Platform: plat, CacheNS: o.CacheNS, Epoch: o.SourceDateEpoch, Network: o.Network}
	buildPlat := ocispecs.Platform{OS: "linux", Architecture: "amd64"} // DefaultPlatform
	if in.BuildPlatform != nil {
		buildPlat = platforms.Normalize(*in.BuildPlatform)
	}
	cross := !samePlatform(buildPlat, plat)
	if cross && o.Installer == "pip" {
		return nil, fmt.Errorf("option installer=pip: %s is built on a %s daemon, where pip would have to run under emulation; installer uv installs for another platform natively (uv pip install --python-platform): use installer=uv, or a %s daemon",
			o.Platform, platforms.Format(buildPlat), o.Platform)
	}

	// Check the context before anything else: a missing directory is the
	// user's most likely mistake and the cheapest to report.
	for _, v := range vs {
		for _, p := range v.Copy {
			ok, err := in.Exists(p)
			if err != nil {
				return nil, fmt.Errorf("variant %s: checking %s in the build context: %w", v.Name, p, err)
			}
			if !ok {
				return nil, spec.MissingPath(v, p, in.ContextName)
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
	// that its uv is the release uv-version names (llb.UV.Prepare). It
	// runs on the build platform.
	if uv, ok := o.installer().(ourllb.UV); ok && in.Resolver != nil {
		if _, _, _, err := in.Resolver.ResolveImageConfig(ctx, uv.ImageRef(), sourceresolver.Opt{
			LogName:  "resolve the uv image " + uv.ImageRef(),
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &buildPlat},
		}); err != nil {
			// %v, not %w: an error wrapping the resolver's gRPC status
			// would reach the client as that status alone, losing this text.
			return nil, fmt.Errorf("options uv-image and uv-version: the uv image %s (uv %s) cannot be resolved: %v", uv.ImageRef(), uv.Version, err)
		}
	}
	env := o.env()
	env.Build = b
	// The default index is the one the lock was made against (a mirror's
	// URL for a lock made with `uv lock --index-url MIRROR`), unless the
	// index-url option replaces it; PyPI is the installers' own default.
	env.LockIndex = in.Lock.DefaultRegistry()
	if env.IndexURL == "" && env.LockIndex != uvlock.DefaultIndex {
		env.IndexURL = env.LockIndex
	}
	if o.IndexAuthSecret != "" {
		env.IndexAuth = &ourllb.IndexAuth{SecretID: o.IndexAuthSecret, Username: o.IndexUsername, Hosts: indexHosts(env.IndexURL, env.LockIndex, o.CPUIndexURL, o.CUDAIndexURL)}
	}
	var builder ourllb.Builder
	if cross {
		// The build platform's python base: the same reference (a
		// manifest list), its image for the build platform.
		nb := ourllb.Build{Platform: buildPlat, CacheNS: b.CacheNS, Epoch: b.Epoch, Network: b.Network}
		norm, err := ourllb.NormalizeRef("option python-base", o.PythonBase)
		if err != nil {
			return nil, err
		}
		native, ok := in.BuildBases[norm]
		if !ok {
			if native, err = ourllb.BaseImage(ctx, in.Resolver, norm, nb); err != nil {
				return nil, fmt.Errorf("option python-base: the build platform's (%s) image, where %s's packages are installed: %w", platforms.Format(buildPlat), o.Platform, err)
			}
		}
		env.PythonPlatform = uvPythonPlatforms[platforms.Format(plat)]
		builder = ourllb.NewCrossBuilder(pyBase.State, native.State, buildPlat, o.installer(), env)
	} else {
		builder = ourllb.NewBuilder(pyBase.State, o.Toolchain, o.installer(), env)
	}
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
	res, err := v.Pins(in.Project, in.Lock, t)
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

	hasProject := len(v.Copy) > 0 || v.InstallProject
	// The layers besides the package layers, as the image has them: the
	// base's, the user, the runtime packages, the venv (two: a diff exports
	// one layer per step, the app dir and the venv) and the project (its
	// copy and its install).
	fixed := len(rtBase.Config.RootFS.DiffIDs) + 3
	if len(o.RuntimePackages) > 0 {
		fixed++
	}
	if len(v.Copy) > 0 {
		fixed++
	}
	if v.InstallProject {
		fixed++
	}
	env := pythonEnv(o)
	pkgs, err := AssignLayers(v.Name, res, env.python, env.machine, LayerRule{Threshold: o.LayerThreshold, Buckets: o.LayerBuckets, Budget: o.LayerBudget}, fixed)
	if err != nil {
		return Image{}, err
	}
	var layers []ourllb.Layer
	for _, pl := range pkgs {
		if builder.Cross && len(pl.Build) > 0 {
			return Image{}, fmt.Errorf("variant %s (%s): %s has no wheel for %s in %s and would be built from its sdist, which a cross build (packages installed on the build platform for %s, never emulated) does not do: lock a wheel for it, or build on a %s daemon",
				v.Name, o.Platform, strings.Join(pl.Build, ", "), o.Platform, in.Lock.Path, o.Platform, o.Platform)
		}
		tc := o.ToolchainMode == "always" || (o.ToolchainMode == "auto" && len(pl.Build) > 0)
		layers = append(layers, llbLayer(pl, t, tc))
	}
	var proj *ourllb.Project
	if hasProject {
		proj = &ourllb.Project{Context: in.Context, Paths: v.Copy, Install: v.InstallProject, Toolchain: o.ToolchainMode == "always"}
	}

	img := Image{Variant: v, Name: name, Platform: b.Platform, Base: rtBase.Ref, BaseConfig: rtBase.Config, Packages: pkgs, Layers: layers, Pins: res}
	switch {
	case o.Plain:
		img.Parts, img.State = ourllb.Plain(rt, builder.Stacked(layers, proj), builder.Env)
	case rtBase.Ref == builderRef:
		img.Shared = true
		parts := []ourllb.Part{builder.VenvPart()}
		for _, l := range layers {
			parts = append(parts, builder.Package(l))
		}
		if proj != nil {
			parts = append(parts, builder.ProjectPart(*proj))
		}
		img.Parts, img.State = ourllb.Merged(rt, parts)
	default:
		// Another runtime base: the environment is assembled in the builder
		// and copied.
		envStates := []llb.State{builder.Venv}
		for _, l := range layers {
			envStates = append(envStates, builder.Package(l).State)
		}
		envState := builder.Venv
		if len(envStates) > 1 {
			envState = llb.Merge(envStates, llb.WithCustomNamef("[builder] merge the venv + %d package layers", len(layers)))
		}
		var pp *ourllb.Part
		if proj != nil {
			p := builder.ProjectPart(*proj)
			pp = &p
		}
		img.Parts, img.State = ourllb.Copied(rt, envState, pp, builder.Env)
	}
	img.Config = ourllb.MergeConfig(rtBase.Config, imageConfig(in, o, v, name, rtBase.Ref), b.Platform, o.SourceDateEpoch)
	return img, nil
}

type pyEnv struct{ python, machine string }

// pythonEnv is the target's CPython version and platform_machine, as the
// lock's wheel tags are matched against them.
func pythonEnv(o Options) pyEnv {
	plat, _ := pep508.ParsePlatform(o.Platform) // checked by Validate
	env, _ := pep508.EnvironmentFor(plat, o.Python)
	return pyEnv{python: env.PythonVersion, machine: env.PlatformMachine}
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
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	if src := o.SourceURL(in.Project); src != "" {
		labels["org.opencontainers.image.source"] = src
	}
	for k, val := range o.Labels {
		labels[k] = val
	}
	cfg := ourllb.ImageConfig{
		User:        o.User,
		WorkingDir:  o.AppDir,
		Env:         append([]string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "VIRTUAL_ENV=" + venv}, v.Env...),
		PathPrepend: []string{venv + "/bin"},
		Volumes:     v.Volumes,
		Entrypoint:  []string{"/usr/bin/tini", "--"},
		Cmd:         v.Command(o.app(v), port),
		Labels:      labels,
	}
	if port > 0 {
		cfg.ExposedPorts = []string{fmt.Sprintf("%d/tcp", port)}
	}
	// The health check: GET the health path, else the image's check
	// command; neither, none.
	var test []string
	switch {
	case port > 0 && v.HealthPath != "":
		test = []string{"CMD-SHELL", fmt.Sprintf("curl -fs http://localhost:%d%s || exit 1", port, v.HealthPath)}
	case len(v.Check) > 0:
		test = append([]string{"CMD"}, v.Check...)
	}
	if test != nil {
		cfg.Healthcheck = &dockerspec.HealthcheckConfig{
			Test:        test,
			Interval:    30 * time.Second,
			Timeout:     10 * time.Second,
			StartPeriod: 30 * time.Second,
			Retries:     3,
		}
	}
	return cfg
}

func imageTitle(ref string) string {
	name := ref
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return path.Base(name)
}

// indexHosts are the distinct host names of the index URLs, sorted: the
// machines an index secret's netrc names.
func indexHosts(urls ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" || seen[u.Hostname()] {
			continue
		}
		seen[u.Hostname()] = true
		out = append(out, u.Hostname())
	}
	sort.Strings(out)
	return out
}
