package llb

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// DefaultUVImage is the official image that carries the uv binary.
const DefaultUVImage = "ghcr.io/astral-sh/uv"

var uvVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// ValidateUVVersion checks a uv version option: X.Y.Z.
func ValidateUVVersion(v string) error {
	if !uvVersion.MatchString(v) {
		return fmt.Errorf("uv version %q: expected a release number like 0.9.5", v)
	}
	return nil
}

// UV installs with uv: `uv sync --frozen` from the lock, never resolving.
// The uv binary is copied from the official uv image (Image:Version) into
// the builder only; the project is read from the read-only dependency mount
// and the environment is Env.VenvDir (UV_PROJECT_ENVIRONMENT).
type UV struct {
	// Image is the image holding /uv; DefaultUVImage when empty.
	Image string
	// Version pins the uv release (the image tag).
	Version string
}

// Name implements Installer.
func (UV) Name() string { return "uv" }

// ImageRef is the uv image reference, Image:Version.
func (u UV) ImageRef() string {
	img := u.Image
	if img == "" {
		img = DefaultUVImage
	}
	return img + ":" + u.Version
}

// Prepare implements Installer.
func (u UV) Prepare(builder llb.State, env Env) llb.State {
	src := llb.Image(u.ImageRef(), llb.Platform(env.Platform), llb.WithCustomNamef("uv %s", u.Version))
	copyOpts := append([]llb.CopyOption{&llb.CopyInfo{CreateDestPath: true}}, env.created()...)
	return builder.File(llb.Copy(src, "/uv", "/usr/local/bin/uv", copyOpts...),
		llb.WithCustomNamef("[builder] installer: uv %s from %s", u.Version, u.ImageRef()))
}

func (u UV) run(env Env, name, cacheKey, cmd string) []llb.RunOption {
	return append(commonRun(env, name),
		shell(cmd),
		llb.AddEnv("UV_PROJECT_ENVIRONMENT", env.VenvDir),
		llb.AddEnv("UV_CACHE_DIR", "/tmp/.uv-cache"),
		llb.AddEnv("UV_LINK_MODE", "copy"),
		llb.AddEnv("UV_PYTHON_DOWNLOADS", "never"),
		cacheMount("/tmp/.uv-cache", env.CacheID("uv", cacheKey, env.PlatformKey()), env.User, env.Build),
	)
}

func syncCmd(sel Selection, project string, extra ...string) string {
	args := append([]string{"uv", "sync", "--frozen", "--inexact", "--no-default-groups", "--project", project}, extra...)
	return shellJoin(append(args, sel.args()...))
}

// Install implements Installer: uv sync of the layer's selection, then the
// requirements that come from another index than the lock's (a CPU torch),
// installed by exact version with no dependencies.
func (u UV) Install(st llb.State, layer Layer, env Env) llb.State {
	cmds := []string{syncCmd(layer.Sync, depMount, "--no-install-project")}
	var outside []Requirement
	for _, r := range layer.Requirements {
		if r.OutsideLock {
			outside = append(outside, r)
		}
	}
	keys, groups := byIndex(outside)
	for _, ix := range keys {
		var specs []string
		for _, r := range groups[ix] {
			specs = append(specs, r.Spec())
		}
		if ix == "" {
			ix = env.IndexURL
		}
		args := []string{"uv", "pip", "install", "--python", env.VenvDir + "/bin/python", "--no-deps"}
		if ix != "" {
			args = append(args, "--index-url", ix)
		}
		cmds = append(cmds, shellJoin(append(args, specs...)))
	}
	opts := append(u.run(env, layerName("uv sync layer", layer.Name), layer.CacheKey, strings.Join(cmds, " && ")),
		llb.AddMount(depMount, env.DepFiles, llb.Readonly))
	return st.Run(opts...).Root()
}

// InstallProject implements Installer: uv builds the project at AppDir and
// installs it, not editable, with the environment already in place.
func (u UV) InstallProject(st llb.State, sync Selection, env Env) llb.State {
	return st.Run(u.run(env, "[builder] uv install the project", "project", syncCmd(sync, env.AppDir, "--no-editable"))...).Root()
}
