package llb

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// Requirement is one pinned package of a package layer.
type Requirement struct {
	Name    string
	Version string
	// Index is the index to take it from; empty means the installer's
	// default index (Env.IndexURL).
	Index string
	// Hashes are "sha256:..." hashes of the files Index serves, if known.
	Hashes []string
}

// Spec is "name==version".
func (r Requirement) Spec() string { return r.Name + "==" + r.Version }

// Layer is one package layer of the Python environment: a set of pins
// installed together into an empty venv, with no dependencies, whose diff
// against that empty venv is one layer of the image. Layers do not depend
// on each other: they are installed side by side and merged.
type Layer struct {
	// Name labels the layer in progress output, plans and reports ("torch",
	// "small 3/8").
	Name string
	// Requirements are the pins it holds, installed with --no-deps (and
	// --require-hashes when every pin of an index carries hashes).
	Requirements []Requirement
	// Toolchain installs it on the builder's toolchain (a pin has no wheel
	// for the target and is built from its sdist).
	Toolchain bool
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
	// IndexURL is the default index packages install from ("" keeps the
	// installer's, PyPI): the index-url option, else the registry the lock
	// was made against.
	IndexURL string
	// LockIndex is the registry the lock records for its packages; when
	// IndexURL is another one, it is a mirror of it.
	LockIndex string
	// CompileBytecode writes .pyc files at install time (uv's
	// --compile-bytecode; pip's default), into each package's own layer.
	CompileBytecode bool
	// IndexAuth, when set, gives the install steps credentials for the
	// indexes, from a BuildKit secret.
	IndexAuth *IndexAuth
	// PythonPlatform, when set, is uv's --python-platform for the target
	// ("aarch64-manylinux_2_28"): the install steps run on another
	// platform than the image's (NewCrossBuilder) and take wheels for it.
	PythonPlatform string
}

// IndexAuth are an index's credentials, kept in a BuildKit secret. They
// reach the installers only inside each install step: the secret is
// mounted (never a layer, an env of the image or a cache key) and NETRC
// names a netrc file, which both uv and pip read. With Username empty the
// secret is a netrc file itself; else it holds the password or token, and
// the step writes a netrc for Hosts on its /tmp tmpfs, which no layer
// keeps.
type IndexAuth struct {
	SecretID string
	Username string
	// Hosts are the host names the credentials are for (the indexes'
	// hosts; netrc matches names, not ports).
	Hosts []string
}

// secretDir is where install steps find the index secret.
const secretDir = "/run/secrets"

// options mounts the secret and points NETRC at the netrc.
func (a *IndexAuth) options(u User) []llb.RunOption {
	if a == nil {
		return nil
	}
	uid, gid := u.UID, u.GID
	mount := secretDir + "/ktrdr-index-auth"
	netrc := mount
	if a.Username != "" {
		netrc = "/tmp/.netrc"
	}
	return []llb.RunOption{
		llb.AddSecret(mount, llb.SecretID(a.SecretID), llb.SecretFileOpt(uid, gid, 0o400)),
		llb.AddEnv("NETRC", netrc),
	}
}

// prefix is the command that writes the step's netrc from a password
// secret ("" when the secret is a netrc already).
func (a *IndexAuth) prefix() string {
	if a == nil || a.Username == "" {
		return ""
	}
	var lines []string
	for _, h := range a.Hosts {
		lines = append(lines, fmt.Sprintf(`printf 'machine %%s login %%s password %%s\n' %s %s "$(cat %s)" >> /tmp/.netrc`,
			ShellQuote(h), ShellQuote(a.Username), secretDir+"/ktrdr-index-auth"))
	}
	return "umask 077; " + strings.Join(lines, "; ") + "; umask 022; "
}

// Installer installs package layers into an empty venv. Both
// implementations run as Env.User, write nothing outside the venv (a
// tmpfs is mounted on /tmp and HOME points there; caches are cache mounts),
// and pass SOURCE_DATE_EPOCH to the tools when Env.Epoch is set.
type Installer interface {
	// Name is "uv" or "pip".
	Name() string
	// Prepare makes the installer available in the builder stage, outside
	// the app dir, so no runtime layer carries it.
	Prepare(builder llb.State, env Env) llb.State
	// Install adds one layer's pins to the venv of st, by version (and
	// hash), without their dependencies.
	Install(st llb.State, layer Layer, env Env) llb.State
	// InstallProject installs the project from the source tree at
	// env.AppDir into the venv, without its dependencies, built by its PEP
	// 517 backend.
	InstallProject(st llb.State, env Env) llb.State
}

// CreateVenv makes the app dir and an empty venv in it, as the app user,
// with the base image's interpreter and no pip inside (no installer reaches
// the runtime).
func CreateVenv(st llb.State, env Env) llb.State {
	st = st.File(llb.Mkdir(env.AppDir, 0o755, mkdirOpts(env.Build, llb.WithParents(true), env.User.Owner())...),
		llb.WithCustomNamef("[builder] create %s owned by %s", env.AppDir, env.User.Name))
	opts := append(env.stepEnv(),
		shell(fmt.Sprintf("%s -m venv --without-pip %s", ShellQuote(env.Python), ShellQuote(env.VenvDir))),
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

// commonRun are the run options every install step has. The step's name
// is metadata: it does not enter the vertex digest, so the same pins give
// the same vertex whatever layer or variant names them.
func commonRun(env Env, name, cmd string) []llb.RunOption {
	opts := append(env.stepEnv(),
		llb.User(env.User.IDs()),
		llb.AddEnv("HOME", "/tmp"),
		llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
		llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs()),
		llb.WithCustomName(name),
		shell(env.IndexAuth.prefix()+cmd),
	)
	return append(opts, env.IndexAuth.options(env.User)...)
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
	if u.User != nil {
		return fmt.Errorf("%s: the URL carries credentials, which would be written into the build graph, its cache keys and the progress log: give them as a BuildKit secret instead (--secret id=ID,env=VAR and the index-auth-secret option)", option)
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

// layerTitle names a layer and its size in progress output: "torch
// (1 package)", "small 3/8 (5 packages)".
func layerTitle(l Layer) string {
	n := len(l.Requirements)
	if n == 1 {
		return fmt.Sprintf("%s (%s)", l.Name, l.Requirements[0].Spec())
	}
	return fmt.Sprintf("%s (%d packages)", l.Name, n)
}
