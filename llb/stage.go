package llb

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Builder is the builder stage: the base image with the installer, then
// the app dir with an empty venv owned by the app user. Every package layer
// is installed into its own copy of that empty venv (Venv), and the layer
// is what the install changed: so a layer depends on its pins, the base,
// the venv path and the user, and on nothing another layer holds.
type Builder struct {
	Env       Env
	Installer Installer
	// Base is the base image with the installer; Venv is Base plus the
	// app dir and the empty venv.
	Base, Venv llb.State
	// Toolchain and ToolchainVenv are the same on top of the toolchain's
	// apt packages: where layers that compile something are installed.
	// Nothing of the toolchain reaches a runtime image.
	Toolchain, ToolchainVenv llb.State
	// HasToolchain is false when no toolchain packages were given: layers
	// asking for it install on Venv.
	HasToolchain bool
	// InstallBase and InstallVenv are where the installer runs: Base and
	// Venv, except in a cross builder (NewCrossBuilder), where they are
	// the build platform's base with the installer and its empty venv at
	// the same path.
	InstallBase, InstallVenv llb.State
	// Cross is true for a cross builder: the packages are installed on the
	// build platform for the target (Env.PythonPlatform).
	Cross bool
}

// NewBuilder makes the builder stage on base. toolchain lists the apt
// packages needed to build sdists. LLB is lazy: the toolchain is only
// installed when a layer that needs it is solved.
func NewBuilder(base llb.State, toolchain []string, inst Installer, env Env) Builder {
	b := Builder{Env: env, Installer: inst}
	b.Base = inst.Prepare(base, env)
	b.Venv = CreateVenv(b.Base, env)
	b.InstallBase, b.InstallVenv = b.Base, b.Venv
	b.Toolchain, b.ToolchainVenv = b.Base, b.Venv
	if len(toolchain) > 0 {
		b.HasToolchain = true
		tc := AptInstall(base, toolchain, env.Build, "builder", "[builder] toolchain: apt-get install "+strings.Join(toolchain, " "))
		b.Toolchain = inst.Prepare(tc, env)
		b.ToolchainVenv = CreateVenv(b.Toolchain, env)
	}
	return b
}

// NewCrossBuilder makes the builder stage for a target platform that is
// not the daemon's own (linux/arm64 on a linux/amd64 buildkitd): the empty
// venv is made on the target's base, where it runs under emulation (a
// second or two: python3 -m venv), but every install step runs natively,
// on the build platform's base (native, of platform build) with the
// installer, into an empty venv at the same path, for the target
// (env.PythonPlatform: uv's --python-platform, wheels only). A package
// layer is the diff of that install, so it applies to the target's venv
// as it is: site-packages and the entry-point scripts, whose shebang
// names VenvDir/bin/python, the target's interpreter in the image. The
// installer is never emulated and nothing is compiled: a layer needing
// the toolchain (an sdist) cannot be built this way (Graphs refuses it).
func NewCrossBuilder(target, native llb.State, build ocispecs.Platform, inst Installer, env Env) Builder {
	b := Builder{Env: env, Installer: inst, Cross: true}
	b.Base = target
	b.Venv = CreateVenv(target, env)
	nenv := env
	nenv.Platform = build
	b.InstallBase = inst.Prepare(native, nenv)
	b.InstallVenv = CreateVenv(b.InstallBase, nenv)
	b.Toolchain, b.ToolchainVenv = b.InstallBase, b.InstallVenv
	return b
}

// empty is the empty venv a layer installs into.
func (b Builder) empty(toolchain bool) llb.State {
	if toolchain {
		return b.ToolchainVenv
	}
	return b.InstallVenv
}

// VenvPart is the app dir and the empty venv as a layer.
func (b Builder) VenvPart() Part {
	return Part{Name: "venv", State: llb.Diff(b.Base, b.Venv, llb.WithCustomName("[layer] venv"))}
}

// Package installs one package layer into the empty venv and returns what
// that changed, as a layer. Two variants (or two builds) with the same
// pins get the same vertices, so the layer is built once and is one blob
// in every image that has it.
func (b Builder) Package(l Layer) Part {
	lower := b.empty(l.Toolchain)
	upper := b.Installer.Install(lower, l, b.Env)
	return Part{Name: "pkg " + l.Name, State: llb.Diff(lower, upper, llb.WithCustomNamef("[layer] %s", layerTitle(l)))}
}

// Stacked installs every layer one after the other into one venv, then
// the project when p is not nil: the builder's full app dir as one state,
// for images assembled without diff and merge (Plain).
func (b Builder) Stacked(layers []Layer, p *Project) llb.State {
	tc := p != nil && p.Toolchain
	for _, l := range layers {
		tc = tc || l.Toolchain
	}
	st := b.empty(tc)
	for _, l := range layers {
		st = b.Installer.Install(st, l, b.Env)
	}
	if p != nil {
		st = b.WithProject(st, *p)
	}
	return st
}

// Project is the application's own files and how to install them.
type Project struct {
	// Context is the build context (with .dockerignore already applied).
	Context llb.State
	// Paths are the context paths (dirs or files, relative) copied to
	// AppDir/<path>, owned by the app user.
	Paths []string
	// Install builds and installs the project into the venv after copying.
	Install bool
	// Toolchain builds it on the builder's toolchain.
	Toolchain bool
}

// ProjectPart copies the project and installs it into the empty venv, and
// returns what that changed as a layer: the project's files and its own
// installed package, never its dependencies, so that a code change
// rebuilds this layer alone.
func (b Builder) ProjectPart(p Project) Part {
	lower := b.empty(p.Toolchain)
	return Part{Name: "project", State: llb.Diff(lower, b.WithProject(lower, p), llb.WithCustomName("[layer] project"))}
}

// WithProject copies the project's files into the app dir of st, as the
// app user, and installs the project if asked to.
func (b Builder) WithProject(st llb.State, p Project) llb.State {
	// One file op copies every path, each owned by the app user as it
	// lands.
	var fa *llb.FileAction
	for _, rel := range p.Paths {
		clean := path.Clean("/" + rel)
		opts := append([]llb.CopyOption{&llb.CopyInfo{
			CreateDestPath: true,
			ChownOpt:       b.Env.User.chown(),
		}}, b.Env.created()...)
		if fa == nil {
			fa = llb.Copy(p.Context, clean, path.Join(b.Env.AppDir, clean), opts...)
		} else {
			fa = fa.Copy(p.Context, clean, path.Join(b.Env.AppDir, clean), opts...)
		}
	}
	if fa != nil {
		st = st.File(fa, llb.WithCustomNamef("[builder] copy %s to %s", strings.Join(p.Paths, ", "), b.Env.AppDir))
	}
	if p.Install {
		st = b.Installer.InstallProject(st, b.Env)
	}
	return st
}

// Runtime is the runtime stage's own layers: the app user and group first,
// then a few apt packages (tini, curl), each a layer of its own.
type Runtime struct {
	// Base is the runtime base image.
	Base llb.State
	// WithUser is Base plus the user and group.
	WithUser llb.State
	// WithPackages is WithUser plus the apt packages.
	WithPackages llb.State
}

// NewRuntime makes the runtime stage's own layers on base. key tells
// runtimes on different bases apart in cache ids.
func NewRuntime(base llb.State, key string, u User, packages []string, b Build) Runtime {
	withUser := AddUser(base, u, b)
	withPkgs := withUser
	if len(packages) > 0 {
		withPkgs = AptInstall(withUser, packages, b, "runtime-"+key, "[runtime] apt-get install "+strings.Join(packages, " "))
	}
	return Runtime{Base: base, WithUser: withUser, WithPackages: withPkgs}
}

// Part is one piece an image is assembled from.
type Part struct {
	// Name says what the layer holds ("user", "deps", "project").
	Name string
	// State is the layer: a diff for merged images.
	State llb.State
}

// Merged assembles a runtime image as a BuildKit merge of the runtime base
// and layers: the runtime's user and package layers (diffs of the runtime
// stage), then parts, which are diffs of the builder (VenvPart, Package,
// ProjectPart). Each is a layer of its own in the exported image; the same
// diff in two images is the same blob. The builder's base must be the
// runtime base (the same image), or the diffs would not apply.
func Merged(rt Runtime, parts []Part) ([]Part, llb.State) {
	diff := func(name string, lower, upper llb.State) Part {
		return Part{Name: name, State: llb.Diff(lower, upper, llb.WithCustomNamef("[layer] %s", name))}
	}
	all := append([]Part{diff("user", rt.Base, rt.WithUser), diff("runtime packages", rt.WithUser, rt.WithPackages)}, parts...)
	states := []llb.State{rt.Base}
	for _, p := range all {
		states = append(states, p.State)
	}
	return all, llb.Merge(states, llb.WithCustomNamef("[runtime] merge base + %d layers", len(all)))
}

// Copied assembles a runtime image the plain way, for a variant that cannot
// share layers (its runtime base is not the builder's): the runtime's own
// layers, then the builder's app dir with its environment (envState: the
// empty venv merged with the package layers) copied in one layer, given to
// the app user by the copy itself, then the project layer, when there is
// one, so that a code change never re-copies the environment.
func Copied(rt Runtime, envState llb.State, project *Part, env Env) ([]Part, llb.State) {
	opts := append([]llb.CopyOption{&llb.CopyInfo{
		CopyDirContentsOnly: true,
		CreateDestPath:      true,
		ChownOpt:            env.User.chown(),
	}}, env.created()...)
	st := rt.WithPackages.File(llb.Copy(envState, env.AppDir, env.AppDir, opts...),
		llb.WithCustomNamef("[runtime] copy %s from the builder, owned by %s", env.AppDir, env.User.Name))
	parts := []Part{{Name: "user", State: rt.WithUser}, {Name: "runtime packages", State: rt.WithPackages}, {Name: "app env (copied)", State: st}}
	if project == nil {
		return parts, st
	}
	parts = append(parts, *project)
	return parts, llb.Merge([]llb.State{st, project.State}, llb.WithCustomName("[runtime] merge the copied env + project"))
}

// Plain assembles a runtime image with neither llb.Diff nor llb.Merge, for
// a BuildKit older than v0.10 (Docker engines before 23.0), which has no
// diff or merge op: the runtime's own layers, then the builder's app dir
// (environment and project, from final) copied in one layer owned by the
// app user, as a Dockerfile's COPY --from=builder --chown would. Nothing is
// shared between images beyond the runtime's layers, and a code change
// copies the environment again: the price of an old daemon.
func Plain(rt Runtime, final llb.State, env Env) ([]Part, llb.State) {
	opts := append([]llb.CopyOption{&llb.CopyInfo{
		CopyDirContentsOnly: true,
		CreateDestPath:      true,
		ChownOpt:            env.User.chown(),
	}}, env.created()...)
	st := rt.WithPackages.File(llb.Copy(final, env.AppDir, env.AppDir, opts...),
		llb.WithCustomNamef("[runtime] copy %s from the builder, owned by %s (no diff/merge on this BuildKit)", env.AppDir, env.User.Name))
	return []Part{{Name: "user", State: rt.WithUser}, {Name: "runtime packages", State: rt.WithPackages}, {Name: "app (copied)", State: st}}, st
}

// Validate checks an Env's paths, user and interpreter.
func (e Env) Validate() error {
	if err := checkAbs("app dir", e.AppDir); err != nil {
		return err
	}
	if err := checkAbs("venv dir", e.VenvDir); err != nil {
		return err
	}
	if !strings.HasPrefix(e.VenvDir, e.AppDir+"/") {
		return fmt.Errorf("venv dir %q: expected a directory inside the app dir %q", e.VenvDir, e.AppDir)
	}
	if e.Python == "" || strings.ContainsAny(e.Python, " \t'\"") {
		return fmt.Errorf("python command %q: expected a command name like python3", e.Python)
	}
	return e.User.Validate()
}
