package llb

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// Requirement is one pinned package of a dependency layer.
type Requirement struct {
	Name    string
	Version string
	// Index is the index to take it from; empty means the installer's
	// default index.
	Index string
	// Hashes are "sha256:..." hashes of the files Index serves, if known.
	Hashes []string
	// OutsideLock marks a package the lock records from another source
	// (a CPU torch where PyPI's is locked): uv leaves it out of the sync
	// and installs it by version, with no dependencies, from Index.
	OutsideLock bool
}

// Spec is "name==version".
func (r Requirement) Spec() string { return r.Name + "==" + r.Version }

// Selection is what `uv sync` installs: the project's extras and groups,
// minus packages installed separately (from another index) or left out.
type Selection struct {
	Extras    []string
	Groups    []string
	NoInstall []string
}

// args renders the selection as uv sync flags, in a stable order.
func (s Selection) args() []string {
	var out []string
	for _, e := range sorted(s.Extras) {
		out = append(out, "--extra", e)
	}
	for _, g := range sorted(s.Groups) {
		out = append(out, "--group", g)
	}
	for _, p := range sorted(s.NoInstall) {
		out = append(out, "--no-install-package", p)
	}
	return out
}

// Layer is one stacked layer of the Python environment.
type Layer struct {
	// Name labels the layer in progress output and cache ids ("deps",
	// "ml-cpu", "dev").
	Name string
	// Requirements are the packages this layer adds: what the pip
	// installer installs, with --no-deps, from their index.
	Requirements []Requirement
	// Sync is the uv selection of the whole environment up to and including
	// this layer; uv installs what it adds with --inexact. Requirements
	// marked OutsideLock are installed after it, by version, with no deps.
	Sync Selection
	// CacheKey separates installer caches that must not mix, such as torch
	// flavours ("cpu", "cuda").
	CacheKey string
}

// Env is where and as whom an installer works.
type Env struct {
	Build
	// Python is the base image's interpreter command ("python3").
	Python string
	// AppDir holds the project; VenvDir is the environment (AppDir/.venv).
	AppDir  string
	VenvDir string
	// User owns everything the installer writes.
	User User
	// DepFiles holds the dependency inputs at its root: pyproject.toml and
	// the lock file. It is mounted read-only; nothing else of the project
	// is visible while dependencies install, so code changes never
	// invalidate them.
	DepFiles llb.State
	// IndexURL is the default index packages install from ("" keeps the
	// installer's, PyPI): the index-url option, else the registry the lock
	// was made against.
	IndexURL string
	// LockIndex is the registry the lock records for its packages; when
	// IndexURL is another one (a mirror), uv cannot take the lock's URLs
	// and installs the lock's pins by version and hash from IndexURL.
	LockIndex string
}

const depMount = "/run/deps"

// Installer installs a Python environment in stacked layers. Both
// implementations run as Env.User, write nothing outside the venv (a
// tmpfs is mounted on /tmp and HOME points there; caches are cache mounts),
// and pass SOURCE_DATE_EPOCH to the tools when Env.Epoch is set.
type Installer interface {
	// Name is "uv" or "pip".
	Name() string
	// Prepare makes the installer available in the builder stage, outside
	// the app dir, so no runtime layer carries it.
	Prepare(builder llb.State, env Env) llb.State
	// Install adds one layer's packages to the venv.
	Install(st llb.State, layer Layer, env Env) llb.State
	// InstallProject installs the project from the source tree at
	// env.AppDir into the venv, without its dependencies, built by its PEP
	// 517 backend. sync is the uv selection of the whole environment.
	InstallProject(st llb.State, sync Selection, env Env) llb.State
}

// CreateVenv makes the app dir and an empty venv in it, as the app user,
// with the base image's interpreter and no pip inside (no installer reaches
// the runtime).
func CreateVenv(st llb.State, env Env) llb.State {
	st = st.File(llb.Mkdir(env.AppDir, 0o755, mkdirOpts(env.Build, llb.WithParents(true), env.User.Owner())...),
		llb.WithCustomNamef("[builder] create %s owned by %s", env.AppDir, env.User.Name))
	opts := append(env.stepEnv(),
		shell(fmt.Sprintf("%s -m venv --without-pip %s", shellQuote(env.Python), shellQuote(env.VenvDir))),
		llb.User(env.User.IDs()),
		llb.AddEnv("HOME", "/tmp"),
		llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs()),
		llb.WithCustomNamef("[builder] create venv %s", env.VenvDir),
	)
	return st.Run(opts...).Root()
}

// cacheMount is a persistent cache directory owned by the app user, so
// installers running as that user can write to it.
func cacheMount(target, id string, u User, b Build) llb.RunOption {
	owned := llb.Scratch().File(llb.Mkdir("/cache", 0o755, mkdirOpts(b, u.Owner())...), llb.WithCustomNamef("cache dir owned by %s", u.IDs()))
	return llb.AddMount(target, owned, llb.SourcePath("/cache"), llb.AsPersistentCacheDir(id, llb.CacheMountShared))
}

// mkdirOpts adds the build's created time to mkdir options.
func mkdirOpts(b Build, opts ...llb.MkdirOption) []llb.MkdirOption {
	if b.Epoch != nil {
		opts = append(opts, llb.WithCreatedTime(*b.Epoch))
	}
	return opts
}

// mkfileOpts adds the build's created time to mkfile options.
func mkfileOpts(b Build, opts ...llb.MkfileOption) []llb.MkfileOption {
	if b.Epoch != nil {
		opts = append(opts, llb.WithCreatedTime(*b.Epoch))
	}
	return opts
}

// commonRun are the run options every install step has.
func commonRun(env Env, name string) []llb.RunOption {
	return append(env.stepEnv(),
		llb.User(env.User.IDs()),
		llb.AddEnv("HOME", "/tmp"),
		llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
		llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs()),
		llb.WithCustomName(name),
	)
}

// byIndex groups requirements by index, default index ("") first.
func byIndex(reqs []Requirement) ([]string, map[string][]Requirement) {
	m := map[string][]Requirement{}
	for _, r := range reqs {
		m[r.Index] = append(m[r.Index], r)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sort.Slice(m[k], func(i, j int) bool { return m[k][i].Name < m[k][j].Name })
	}
	return keys, m
}

// ValidateIndexURL checks an index URL option: http, https or file, with a
// host for the first two.
func ValidateIndexURL(option, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s %q: %w", option, s, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%s %q: expected a URL with a host, like https://pypi.org/simple", option, s)
		}
	case "file":
	default:
		return fmt.Errorf("%s %q: expected an http, https or file URL, like https://pypi.org/simple", option, s)
	}
	return nil
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

func layerName(kind, layer string) string {
	return "[builder] " + kind + " " + strings.TrimSpace(layer)
}
