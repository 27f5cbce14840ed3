package variants

import (
	"fmt"
	"github.com/moby/buildkit/solver/pb"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/llb"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// Options are the values a platform team may change. Every one has a
// default (DefaultOptions) and is checked by Validate; Set parses the
// key=value form that the CLI's --opt and the frontend's build args share.
type Options struct {
	// Platform is the target platform: linux/amd64 or linux/arm64.
	Platform string
	// Python is the interpreter version of the base image, used to evaluate
	// the lock's markers ("3.13" or "3.13.5").
	Python string
	// PythonCommand runs that interpreter in the base image.
	PythonCommand string
	// PythonBase is the base image of the builder and of every runtime
	// image but a CUDA-based worker-gpu.
	PythonBase string
	// CUDABase, when set, is worker-gpu's base image: it provides the CUDA
	// libraries and the nvidia-* wheels are left out. Empty: CUDA comes from
	// the locked nvidia-* wheels on PythonBase.
	CUDABase string
	// Installer is "uv" or "pip": either installs each package layer's pins
	// from the lock with --no-deps and --require-hashes.
	Installer string
	// UVImage and UVVersion name the image the uv binary is taken from.
	UVImage   string
	UVVersion string
	// IndexURL replaces the default package index ("" keeps PyPI).
	IndexURL string
	// CPUIndexURL serves CPU torch builds; CUDAIndexURL, when set, serves
	// worker-gpu's CUDA torch.
	CPUIndexURL  string
	CUDAIndexURL string
	// Registry prefixes image names ("" for none); Tag, when set, replaces
	// every variant's tag.
	Registry string
	Tag      string
	// Images maps a variant to its image name (repository[:tag]).
	Images map[string]string
	// Ports and Apps override a variant's port and app (module:attr).
	Ports map[string]int
	Apps  map[string]string
	// User, Group, UID and GID are the app account; AppDir its home.
	User   string
	Group  string
	UID    int
	GID    int
	AppDir string
	// Toolchain are the builder's apt packages; RuntimePackages the
	// runtime's (tini is the entrypoint, curl the health check).
	Toolchain       []string
	RuntimePackages []string
	// Labels are added to every image's OCI labels (source, revision...).
	Labels map[string]string
	// Revision and Source are the org.opencontainers.image.revision and
	// .source label and annotation ("": source from pyproject.toml's
	// [project.urls], revision left out).
	Revision string
	Source   string
	// Annotations puts the OCI keys (title, version, revision, source,
	// created, description) on the manifests, and on the index when there
	// is one, as well as in the labels.
	Annotations bool
	// IndexAuthSecret is the id of the BuildKit secret holding the
	// indexes' credentials: a netrc file, or with IndexUsername the
	// password or token (see llb.IndexAuth). "": no credentials.
	IndexAuthSecret string
	IndexUsername   string
	// SourceDateEpoch fixes timestamps (SOURCE_DATE_EPOCH); nil: unset.
	SourceDateEpoch *time.Time
	// CacheNS prefixes cache mount ids.
	CacheNS string
	// Network is every step's network mode (unset: the daemon's default);
	// the frontend takes it from the client's --network.
	Network pb.NetMode
	// LayerThreshold, LayerBuckets and LayerBudget split the environment
	// into package layers (see AssignLayers): a package whose artifact
	// for the target is at least LayerThreshold bytes is alone in its
	// layer, the others share LayerBuckets layers by a hash of their name,
	// and no image has more than LayerBudget layers, its base's included.
	LayerThreshold int64
	LayerBuckets   int
	LayerBudget    int
	// ToolchainMode says when layers are installed on the toolchain:
	// "auto" (only those with a package the lock has no wheel for on the
	// target), "always" or "never".
	ToolchainMode string
	// CompileBytecode precompiles .pyc files at install time.
	CompileBytecode bool
	// Plain assembles every image by copying the builder's app dir instead
	// of merging diff layers: for daemons without the diff and merge ops
	// (BuildKit < v0.10). build.Solve sets it from the daemon's caps.
	Plain bool

	// set are the keys given to Set (--opt, build args): a spec's
	// settings do not override them (Spec.Apply).
	set map[string]bool
}

// Default values of the options.
const (
	DefaultPythonBase = "python:3.13-slim"
	DefaultUVVersion  = "0.9.17"
	DefaultInstaller  = "uv"
	// DefaultLayerThreshold: packages of 1 MB or more (the lock's size of
	// the wheel the target installs) get a layer each. On the example's
	// lock that is 21 of 62 packages and 99.8% of the bytes; the rest,
	// 4.6 MB of wheels, shares the buckets (README: "The graph").
	DefaultLayerThreshold = 1 << 20
	DefaultLayerBuckets   = 8
	// DefaultLayerBudget is well under Docker's 125-layer limit.
	DefaultLayerBudget = 40
)

// DefaultOptions returns the defaults: KTRDR's images as its Dockerfiles
// describe them, with the torch flavours done right.
func DefaultOptions() Options {
	return Options{
		Platform:        DefaultPlatform,
		Python:          DefaultPython,
		PythonCommand:   "python3",
		PythonBase:      DefaultPythonBase,
		Installer:       DefaultInstaller,
		UVImage:         llb.DefaultUVImage,
		UVVersion:       DefaultUVVersion,
		CPUIndexURL:     uvlock.DefaultCPUIndex,
		Images:          map[string]string{},
		Ports:           map[string]int{},
		Apps:            map[string]string{},
		User:            "ktrdr",
		Group:           "ktrdr",
		UID:             999,
		GID:             999,
		AppDir:          "/app",
		Toolchain:       []string{"build-essential", "gcc"},
		RuntimePackages: []string{"tini", "curl"},
		Labels:          map[string]string{},
		CacheNS:         "ktrdr-images",
		LayerThreshold:  DefaultLayerThreshold,
		LayerBuckets:    DefaultLayerBuckets,
		LayerBudget:     DefaultLayerBudget,
		ToolchainMode:   "auto",
		Annotations:     true,
	}
}

// OptionHelp describes each key Set accepts.
var optionHelp = map[string]string{
	"platform":          "target platform: linux/amd64 or linux/arm64",
	"python-version":    "the base image's Python version (X.Y or X.Y.Z), for the lock's markers",
	"python-command":    "the interpreter command in the base image",
	"python-base":       "base image of the builder and the runtime images",
	"cuda-base":         "worker-gpu's base image providing CUDA (empty: CUDA from the nvidia-* wheels)",
	"installer":         "uv or pip",
	"uv-image":          "image the uv binary is copied from",
	"uv-version":        "uv release (X.Y.Z), the uv image's tag",
	"index-url":         "package index replacing PyPI",
	"cpu-index-url":     "index of CPU torch builds",
	"cuda-index-url":    "index of CUDA torch builds for worker-gpu (empty: as locked)",
	"registry":          "registry/namespace prefixed to image names",
	"tag":               "tag replacing every variant's tag",
	"image.VARIANT":     "image name of one variant (repository[:tag])",
	"port.VARIANT":      "port of one variant",
	"app.VARIANT":       "ASGI app (module:attribute) of one variant",
	"user":              "app user name",
	"group":             "app group name",
	"uid":               "app user id",
	"gid":               "app group id",
	"app-dir":           "the app directory (the venv is APP_DIR/.venv)",
	"toolchain":         "builder apt packages, comma-separated",
	"runtime-packages":  "runtime apt packages, comma-separated",
	"label.KEY":         "an OCI label on every image",
	"revision":          "source revision (a git commit): the org.opencontainers.image.revision label and annotation",
	"source":            "source repository URL: the org.opencontainers.image.source label and annotation (default: pyproject.toml's [project.urls] Source, Repository or Homepage)",
	"annotations":       "put the OCI keys on the manifests and index as annotations too (true or false)",
	"index-auth-secret": "id of the BuildKit secret (--secret id=ID,...) with the package indexes' credentials: a netrc file, or the password or token of index-username",
	"index-username":    "user name for the package indexes; the index-auth-secret secret is then its password or token",
	"source-date-epoch": "SOURCE_DATE_EPOCH: seconds since 1970 for every timestamp",
	"layer-threshold":   "packages whose wheel is at least this size get a layer each (bytes, or 512kB, 1MB, 16MiB...)",
	"layer-buckets":     "number of layers the smaller packages share",
	"layer-budget":      "most layers an image may have, its base's included",
	"toolchain-mode":    "auto (the toolchain only for packages without a wheel for the target), always or never",
	"compile-bytecode":  "precompile .pyc files at install time (true or false)",
}

// OptionKeys lists the keys Set accepts, with a one-line help each.
func OptionKeys() [][2]string {
	keys := make([]string, 0, len(optionHelp))
	for k := range optionHelp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, optionHelp[k]}
	}
	return out
}

// Set parses one option given as key and value. Unknown keys and
// malformed numbers are errors naming the option; a variant name in a key
// (image.NAME) is checked against the spec by Spec.Apply and CheckVariants.
// An option given to Set is the user's: a spec's settings leave it as is.
func (o *Options) Set(key, value string) error {
	if err := o.assign(key, value); err != nil {
		return err
	}
	if o.set == nil {
		o.set = map[string]bool{}
	}
	o.set[key] = true
	return nil
}

// assign parses and stores one option.
func (o *Options) assign(key, value string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("option %s=%q: %s", key, value, fmt.Sprintf(format, args...))
	}
	if prefix, rest, ok := strings.Cut(key, "."); ok {
		switch prefix {
		case "image", "port", "app":
			if !nameRE.MatchString(rest) {
				return fmt.Errorf("option %s: %q is not a variant name (lower-case letters, digits, - and _)", key, rest)
			}
			switch prefix {
			case "image":
				o.Images = setMap(o.Images, rest, value)
			case "app":
				o.Apps = setMap(o.Apps, rest, value)
			case "port":
				n, err := strconv.Atoi(value)
				if err != nil {
					return bad("expected a port number from 1 to 65535")
				}
				if o.Ports == nil {
					o.Ports = map[string]int{}
				}
				o.Ports[rest] = n
			}
			return nil
		case "label":
			o.Labels = setMap(o.Labels, rest, value)
			return nil
		}
	}
	switch key {
	case "platform":
		o.Platform = value
	case "python-version":
		o.Python = value
	case "python-command":
		o.PythonCommand = value
	case "python-base":
		o.PythonBase = value
	case "cuda-base":
		o.CUDABase = value
	case "installer":
		o.Installer = value
	case "uv-image":
		o.UVImage = value
	case "uv-version":
		o.UVVersion = value
	case "index-url":
		o.IndexURL = value
	case "cpu-index-url":
		o.CPUIndexURL = value
	case "cuda-index-url":
		o.CUDAIndexURL = value
	case "registry":
		o.Registry = strings.TrimSuffix(value, "/")
	case "tag":
		o.Tag = value
	case "user":
		o.User = value
	case "group":
		o.Group = value
	case "uid", "gid":
		n, err := strconv.Atoi(value)
		if err != nil {
			return bad("expected a number from 1 to 65534")
		}
		if key == "uid" {
			o.UID = n
		} else {
			o.GID = n
		}
	case "app-dir":
		o.AppDir = value
	case "toolchain":
		o.Toolchain = splitList(value)
	case "runtime-packages":
		o.RuntimePackages = splitList(value)
	case "layer-threshold":
		n, err := ParseSize(value)
		if err != nil {
			return bad("%v", err)
		}
		o.LayerThreshold = n
	case "layer-buckets", "layer-budget":
		n, err := strconv.Atoi(value)
		if err != nil {
			return bad("expected a whole number")
		}
		if key == "layer-buckets" {
			o.LayerBuckets = n
		} else {
			o.LayerBudget = n
		}
	case "toolchain-mode":
		o.ToolchainMode = value
	case "compile-bytecode", "annotations":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad("expected true or false")
		}
		if key == "annotations" {
			o.Annotations = b
		} else {
			o.CompileBytecode = b
		}
	case "revision":
		o.Revision = value
	case "index-auth-secret":
		if strings.ContainsAny(value, " /,=") {
			return bad("expected a secret id (letters, digits, - and _)")
		}
		o.IndexAuthSecret = value
	case "index-username":
		if strings.ContainsAny(value, " \t\n'\"") {
			return bad("expected a user name without spaces or quotes")
		}
		o.IndexUsername = value
	case "source":
		if value != "" && !strings.Contains(value, "://") {
			return bad("expected a URL (https://...)")
		}
		o.Source = value
	case "source-date-epoch":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return bad("expected seconds since 1970 (SOURCE_DATE_EPOCH)")
		}
		t := time.Unix(n, 0).UTC()
		o.SourceDateEpoch = &t
	default:
		return fmt.Errorf("unknown option %q: expected one of %s", key, strings.Join(keyNames(), ", "))
	}
	return nil
}

func keyNames() []string {
	var out []string
	for _, kv := range OptionKeys() {
		out = append(out, kv[0])
	}
	return out
}

func setMap[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks every option and returns the first problem, naming the
// option and what was expected.
func (o Options) Validate() error {
	if o.IndexUsername != "" && o.IndexAuthSecret == "" {
		return fmt.Errorf("option index-username=%q: needs index-auth-secret, the id of the secret holding its password or token", o.IndexUsername)
	}
	plat, err := pep508.ParsePlatform(o.Platform)
	if err != nil {
		return fmt.Errorf("option platform: %w", err)
	}
	if _, err := pep508.EnvironmentFor(plat, o.Python); err != nil {
		return fmt.Errorf("option python-version: %w", err)
	}
	if _, err := llb.NormalizeRef("option python-base", o.PythonBase); err != nil {
		return err
	}
	if o.CUDABase != "" {
		if _, err := llb.NormalizeRef("option cuda-base", o.CUDABase); err != nil {
			return err
		}
	}
	switch o.Installer {
	case "uv":
		if err := llb.ValidateUVVersion(o.UVVersion); err != nil {
			return fmt.Errorf("option uv-version: %w", err)
		}
		if _, err := llb.NormalizeRef("option uv-image", o.UVImage+":"+o.UVVersion); err != nil {
			return err
		}
	case "pip":
	default:
		return fmt.Errorf("option installer %q: expected uv or pip", o.Installer)
	}
	for _, u := range [][2]string{{"index-url", o.IndexURL}, {"cpu-index-url", o.CPUIndexURL}, {"cuda-index-url", o.CUDAIndexURL}} {
		if err := llb.ValidateIndexURL("option "+u[0], u[1]); err != nil {
			return err
		}
	}
	if o.CPUIndexURL == "" {
		return fmt.Errorf("option cpu-index-url: expected the URL of an index of CPU torch builds")
	}
	for _, name := range sortedMapKeys(o.Images) {
		if _, err := o.ImageName(Variant{Name: name, Image: o.Images[name]}); err != nil {
			return err
		}
	}
	if o.Tag != "" || o.Registry != "" {
		if _, err := o.ImageName(Variant{Name: "any", Image: "image:latest"}); err != nil {
			return err
		}
	}
	for _, name := range sortedMapKeys(o.Ports) {
		if p := o.Ports[name]; p < 1 || p > 65535 {
			return fmt.Errorf("option port.%s=%d: expected a port number from 1 to 65535", name, p)
		}
	}
	for _, name := range sortedMapKeys(o.Apps) {
		a := o.Apps[name]
		mod, attr, found := strings.Cut(a, ":")
		if !found || !pyIdentPath(mod) || !pyIdentPath(attr) {
			return fmt.Errorf("option app.%s=%q: expected module:attribute, like ktrdr.api.main:app", name, a)
		}
	}
	if err := o.user().Validate(); err != nil {
		return fmt.Errorf("options user/group/uid/gid: %w", err)
	}
	if o.PythonCommand == "" || strings.ContainsAny(o.PythonCommand, " \t'\"$;&|") {
		return fmt.Errorf("option python-command %q: expected a command name like python3", o.PythonCommand)
	}
	if err := llb.ValidatePackages("option toolchain", o.Toolchain); err != nil {
		return err
	}
	if err := llb.ValidatePackages("option runtime-packages", o.RuntimePackages); err != nil {
		return err
	}
	for k := range o.Labels {
		if k == "" || strings.ContainsAny(k, " \t=") {
			return fmt.Errorf("option label.%s: expected a label key without spaces or =", k)
		}
	}
	if o.LayerThreshold < 1 {
		return fmt.Errorf("option layer-threshold=%d: expected a size of at least one byte", o.LayerThreshold)
	}
	if o.LayerBuckets < 1 || o.LayerBuckets > 64 {
		return fmt.Errorf("option layer-buckets=%d: expected a number from 1 to 64", o.LayerBuckets)
	}
	if o.LayerBudget < 10 || o.LayerBudget > 125 {
		return fmt.Errorf("option layer-budget=%d: expected a number from 10 to 125 (Docker refuses images of more than 125 layers)", o.LayerBudget)
	}
	switch o.ToolchainMode {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("option toolchain-mode %q: expected auto, always or never", o.ToolchainMode)
	}
	env := o.env()
	if err := env.Validate(); err != nil {
		return fmt.Errorf("option app-dir: %w", err)
	}
	return nil
}

// CheckVariants checks the options that name a variant (image.NAME,
// port.NAME, app.NAME) against the spec's images.
func (o Options) CheckVariants(s *Spec) error {
	for _, m := range []struct {
		key   string
		names []string
	}{{"image", sortedMapKeys(o.Images)}, {"port", sortedMapKeys(o.Ports)}, {"app", sortedMapKeys(o.Apps)}} {
		for _, n := range m.names {
			v, err := s.Lookup(n)
			if err != nil {
				return fmt.Errorf("option %s.%s: %w", m.key, n, err)
			}
			if m.key == "app" && len(v.Cmd) > 0 {
				return fmt.Errorf("option app.%s: variant %s has a command, not an ASGI app (%s)", n, n, s.source())
			}
		}
	}
	return nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// get is the value of a setting key as assign takes it (for Spec.Apply's
// "still the built-in default" test).
func (o Options) get(key string) string {
	switch key {
	case "user":
		return o.User
	case "group":
		return o.Group
	case "uid":
		return strconv.Itoa(o.UID)
	case "gid":
		return strconv.Itoa(o.GID)
	case "app-dir":
		return o.AppDir
	case "python-base":
		return o.PythonBase
	case "python-version":
		return o.Python
	case "python-command":
		return o.PythonCommand
	case "cuda-base":
		return o.CUDABase
	case "toolchain":
		return strings.Join(o.Toolchain, ",")
	case "runtime-packages":
		return strings.Join(o.RuntimePackages, ",")
	case "registry":
		return o.Registry
	case "tag":
		return o.Tag
	case "installer":
		return o.Installer
	case "uv-image":
		return o.UVImage
	case "uv-version":
		return o.UVVersion
	case "index-url":
		return o.IndexURL
	case "cpu-index-url":
		return o.CPUIndexURL
	case "cuda-index-url":
		return o.CUDAIndexURL
	case "source":
		return o.Source
	case "annotations":
		return strconv.FormatBool(o.Annotations)
	case "compile-bytecode":
		return strconv.FormatBool(o.CompileBytecode)
	case "toolchain-mode":
		return o.ToolchainMode
	case "layer-threshold":
		return strconv.FormatInt(o.LayerThreshold, 10)
	case "layer-buckets":
		return strconv.Itoa(o.LayerBuckets)
	case "layer-budget":
		return strconv.Itoa(o.LayerBudget)
	}
	return ""
}

func pyIdentPath(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// ImageName is the full image name of a variant: registry, repository and
// tag after the options are applied.
func (o Options) ImageName(v Variant) (string, error) {
	name := v.Image
	if n, ok := o.Images[v.Name]; ok {
		name = n
	}
	if o.Tag != "" {
		repo := name
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			repo = name[:i]
		}
		name = repo + ":" + o.Tag
	}
	if o.Registry != "" {
		name = o.Registry + "/" + name
	}
	ref, err := llb.NormalizeRef("image name of "+v.Name, name)
	if err != nil {
		return "", fmt.Errorf("options registry/tag/image.%s: %w", v.Name, err)
	}
	return ref, nil
}

func (o Options) user() llb.User {
	return llb.User{Name: o.User, Group: o.Group, UID: o.UID, GID: o.GID, Home: o.AppDir, Shell: "/sbin/nologin"}
}

// env is the installer environment the options describe, without the
// per-build parts (platform, dependency files).
func (o Options) env() llb.Env {
	return llb.Env{
		Python:          o.PythonCommand,
		AppDir:          o.AppDir,
		VenvDir:         strings.TrimSuffix(o.AppDir, "/") + "/.venv",
		User:            o.user(),
		IndexURL:        o.IndexURL,
		CompileBytecode: o.CompileBytecode,
	}
}

// ParseSize reads a size: bytes, or a number with a decimal (kB, MB, GB)
// or binary (KiB, MiB, GiB) unit.
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("expected a size in bytes, or with a unit (512kB, 16MB, 16MiB)")
	}
	return int64(f * mult), nil
}

func (o Options) installer() llb.Installer {
	if o.Installer == "pip" {
		return llb.Pip{}
	}
	return llb.UV{Image: o.UVImage, Version: o.UVVersion}
}

func (o Options) port(v Variant) int {
	if p, ok := o.Ports[v.Name]; ok {
		return p
	}
	return v.Port
}

func (o Options) app(v Variant) string {
	if a, ok := o.Apps[v.Name]; ok {
		return a
	}
	return v.App
}

// SourceURL is the source repository the images name: the source option,
// else the project's [project.urls] (see pyproject.Project.SourceURL).
func (o Options) SourceURL(p *pyproject.Project) string {
	if o.Source != "" || p == nil {
		return o.Source
	}
	return p.SourceURL()
}

// OCIAnnotationKeys are the labels that Annotations also puts on the
// manifests and the index.
var OCIAnnotationKeys = []string{
	"org.opencontainers.image.title", "org.opencontainers.image.version", "org.opencontainers.image.revision",
	"org.opencontainers.image.source", "org.opencontainers.image.created", "org.opencontainers.image.description",
}
