package llb

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// Builder is the builder stage: the base image with a toolchain and an
// installer, then the app dir with an empty venv owned by the app user.
// Every environment layer grows from Venv.
type Builder struct {
	Env       Env
	Installer Installer
	// Toolchain is the base with build tools and the installer: nothing of
	// it reaches a runtime image.
	Toolchain llb.State
	// Venv is Toolchain plus the app dir and the empty venv.
	Venv llb.State
}

// NewBuilder makes the builder stage on base. toolchain lists the apt
// packages needed to build sdists (none when empty).
func NewBuilder(base llb.State, toolchain []string, inst Installer, env Env) Builder {
	tc := base
	if len(toolchain) > 0 {
		tc = AptInstall(base, toolchain, env.Build, "builder", "[builder] toolchain: apt-get install "+strings.Join(toolchain, " "))
	}
	tc = inst.Prepare(tc, env)
	return Builder{Env: env, Installer: inst, Toolchain: tc, Venv: CreateVenv(tc, env)}
}

// Grow installs layers one on top of the other and returns the builder
// state after each. Growing the same leading layers twice gives identical
// vertices, so environments that start alike share those layers.
func (b Builder) Grow(layers []Layer) []llb.State {
	out := make([]llb.State, len(layers))
	st := b.Venv
	for i, l := range layers {
		st = b.Installer.Install(st, l, b.Env)
		out[i] = st
	}
	return out
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
	// Sync is the uv selection of the environment the project joins.
	Sync Selection
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
		st = b.Installer.InstallProject(st, p.Sync, b.Env)
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

// Merged assembles a runtime image as BuildKit merge of the runtime base and
// diffs: the runtime's user and package layers, then each builder step's
// changes from lower to upper (chain[i-1] -> chain[i]). Each diff is a layer
// of its own in the exported image; the same diff in two images is the same
// blob. The builder's chain must start from a state whose filesystem is the
// runtime base's (the same base image), or the diffs would not apply.
func Merged(rt Runtime, chain []Part) ([]Part, llb.State) {
	diff := func(name string, lower, upper llb.State) Part {
		return Part{Name: name, State: llb.Diff(lower, upper, llb.WithCustomNamef("[layer] %s", name))}
	}
	parts := []Part{diff("user", rt.Base, rt.WithUser), diff("runtime packages", rt.WithUser, rt.WithPackages)}
	for i := 1; i < len(chain); i++ {
		parts = append(parts, diff(chain[i].Name, chain[i-1].State, chain[i].State))
	}
	states := []llb.State{rt.Base}
	var names []string
	for _, p := range parts {
		states = append(states, p.State)
		names = append(names, p.Name)
	}
	return parts, llb.Merge(states, llb.WithCustomNamef("[runtime] merge base + %s", strings.Join(names, " + ")))
}

// Copied assembles a runtime image the plain way, for a variant that cannot
// share layers (its runtime base is not the builder's): the runtime's own
// layers, then the builder's app dir with its environment (from envState)
// copied in one layer, given to the app user by the copy itself, then, when
// project differs from envState, what the project step changed as a diff
// layer of its own, so that a code change never re-copies the environment.
func Copied(rt Runtime, envState, project llb.State, hasProject bool, env Env) ([]Part, llb.State) {
	opts := append([]llb.CopyOption{&llb.CopyInfo{
		CopyDirContentsOnly: true,
		CreateDestPath:      true,
		ChownOpt:            env.User.chown(),
	}}, env.created()...)
	st := rt.WithPackages.File(llb.Copy(envState, env.AppDir, env.AppDir, opts...),
		llb.WithCustomNamef("[runtime] copy %s from the builder, owned by %s", env.AppDir, env.User.Name))
	parts := []Part{{Name: "user", State: rt.WithUser}, {Name: "runtime packages", State: rt.WithPackages}, {Name: "app env (copied)", State: st}}
	if !hasProject {
		return parts, st
	}
	diff := llb.Diff(envState, project, llb.WithCustomName("[layer] project"))
	parts = append(parts, Part{Name: "project", State: diff})
	return parts, llb.Merge([]llb.State{st, diff}, llb.WithCustomName("[runtime] merge the copied env + project"))
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
