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

// UV installs with uv: `uv pip install --no-deps` of the lock's pins, by
// version and hash, never resolving. The uv binary is copied from the
// official uv image (Image:Version) into the builder only.
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

// Prepare implements Installer: /uv of the uv image into the builder,
// then a check that it runs and is the release uv-version asks for, so a
// wrong or broken image fails with its name before any install step.
func (u UV) Prepare(builder llb.State, env Env) llb.State {
	src := llb.Image(u.ImageRef(), llb.Platform(env.Platform), llb.WithCustomNamef("uv %s", u.Version))
	copyOpts := append([]llb.CopyOption{&llb.CopyInfo{CreateDestPath: true}}, env.created()...)
	st := builder.File(llb.Copy(src, "/uv", "/usr/local/bin/uv", copyOpts...),
		llb.WithCustomNamef("[builder] installer: uv %s from %s", u.Version, u.ImageRef()))
	ref, v := ShellQuote(u.ImageRef()), ShellQuote(u.Version)
	check := fmt.Sprintf(`out="$(/usr/local/bin/uv --version 2>&1)" || { echo "uv image "%[1]s": its /uv does not run here: $out" >&2; exit 1; }; `+
		`case "$out" in "uv "%[2]s|"uv "%[2]s" "*) echo "$out";; *) echo "uv image "%[1]s" holds $out, but option uv-version asks for "%[2]s >&2; exit 1;; esac`, ref, v)
	return st.Run(append(env.stepEnv(), shell(check), llb.WithCustomNamef("[builder] installer: check uv --version is %s", u.Version))...).Root()
}

func (u UV) run(env Env, name, cmd string) []llb.RunOption {
	return append(commonRun(env, name, cmd),
		llb.AddEnv("UV_CACHE_DIR", "/tmp/.uv-cache"),
		llb.AddEnv("UV_LINK_MODE", "copy"),
		llb.AddEnv("UV_PYTHON_DOWNLOADS", "never"),
		cacheMount("/tmp/.uv-cache", env.CacheID("uv", "pkgs", env.PlatformKey()), env.User, env.Build),
	)
}

func (u UV) pipInstall(env Env) []string {
	args := []string{"uv", "pip", "install", "--python", env.VenvDir + "/bin/python", "--no-deps"}
	if env.PythonPlatform != "" {
		args = append(args, "--python-platform", env.PythonPlatform)
	}
	if env.CompileBytecode {
		args = append(args, "--compile-bytecode")
	}
	return args
}

// venvLock is the lock file uv takes in the venv while it installs: it is
// removed in the same step, so no package layer carries it.
func venvLock(env Env) string { return "rm -f " + ShellQuote(env.VenvDir+"/.lock") }

// Install implements Installer: `uv pip install --no-deps` of the layer's
// pins from requirements files, one per index, with --require-hashes when
// the lock records every pin's hashes. This installs exactly what
// `uv sync --frozen` would for these pins (the same versions, checked
// against the same hashes), from the index the lock names or its mirror:
// `uv sync --frozen` itself fetches the lock's URLs whatever --index-url,
// --default-index or UV_INDEX_URL say (measured with uv 0.9.17), and
// cannot install a subset of the environment into an empty venv.
func (u UV) Install(st llb.State, layer Layer, env Env) llb.State {
	if len(layer.Requirements) == 0 {
		return st
	}
	cmds := requirementFiles(layer, env, func(index string, hashes bool, file string) string {
		args := u.pipInstall(env)
		if hashes {
			args = append(args, "--require-hashes")
		}
		if index != "" {
			args = append(args, "--index-url", index)
		}
		return shellJoin(append(args, "-r", file))
	})
	cmds = append(cmds, venvLock(env))
	return st.Run(u.run(env, layerName("uv pip install", layerTitle(layer)), strings.Join(cmds, " && "))...).Root()
}

// InstallProject implements Installer: uv builds the project at AppDir
// with its PEP 517 backend (from the default index, as every package
// outside the lock) and installs it, not editable, without its
// dependencies: the package layers hold exactly the lock's set, and
// `uv sync --no-editable` would need the lock file in the image's app dir.
// For a package installed from a path uv writes uv_cache.json into its
// dist-info, a cache hint holding the source's change time (ctime, which
// nothing can set), so two builds of one commit would differ in it; it is
// removed, with its RECORD line, as pip never writes it.
func (u UV) InstallProject(st llb.State, env Env) llb.State {
	args := u.pipInstall(env)
	if env.IndexURL != "" {
		args = append(args, "--index-url", env.IndexURL)
	}
	install := shellJoin(append(args, env.AppDir))
	site := ShellQuote(env.VenvDir) + "/lib/python*/site-packages"
	clean := `for f in ` + site + `/*.dist-info/uv_cache.json; do [ -e "$f" ] || continue; rm "$f"; sed -i '/\.dist-info\/uv_cache\.json,/d' "$(dirname "$f")/RECORD"; done`
	return st.Run(u.run(env, "[builder] uv install the project", install+" && "+clean+" && "+venvLock(env))...).Root()
}
