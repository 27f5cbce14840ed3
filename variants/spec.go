package variants

import (
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/pelletier/go-toml/v2/unstable"
)

// SpecTable is the table of pyproject.toml that declares an application's
// images. A project without it gets KTRDR's four (DefaultSpec).
const SpecTable = "tool.ktrdr-images"

// defaultSpecFile is KTRDR's four images written as a spec: the same
// [tool.ktrdr-images] table a project would put in its pyproject.toml.
//
//go:embed ktrdr.toml
var defaultSpecFile []byte

// DefaultSpecName names the embedded spec in errors and listings.
const DefaultSpecName = "variants/ktrdr.toml (the default spec)"

// Spec is an application's set of images: the shared settings and the
// images, in the order they were declared.
type Spec struct {
	// Path is the file the spec was read from.
	Path string
	// Default is true for the embedded KTRDR spec (the project has no
	// [tool.ktrdr-images] table).
	Default bool
	// Settings are option keys (Options.Set's) and values: the project's
	// defaults, which --opt and build args override.
	Settings [][2]string
	// Variants are the images.
	Variants []Variant
	// DefaultTarget is the image listings mark as the default
	// (default-target; the first image when not given).
	DefaultTarget string

	// lines maps "image NAME key" (and "key" for settings) to the line it
	// is on, for errors found after reading (a path the context lacks).
	lines map[string]int
}

// settingKeys are the option keys the spec's top level takes, with their
// TOML type: s string, i integer, b boolean, l array of strings, t table of
// strings (label.KEY).
var settingKeys = map[string]byte{
	"user": 's', "group": 's', "uid": 'i', "gid": 'i', "app-dir": 's',
	"python-base": 's', "python-version": 's', "python-command": 's', "cuda-base": 's',
	"toolchain": 'l', "runtime-packages": 'l', "registry": 's', "tag": 's',
	"installer": 's', "uv-image": 's', "uv-version": 's',
	"index-url": 's', "cpu-index-url": 's', "cuda-index-url": 's',
	"labels": 't', "source": 's', "annotations": 'b', "compile-bytecode": 'b',
	"toolchain-mode": 's', "layer-threshold": 's', "layer-buckets": 'i', "layer-budget": 'i',
}

// imageKeys are the keys of one [[tool.ktrdr-images.image]].
var imageKeys = []string{
	"name", "description", "image", "extras", "groups", "torch", "cuda-base",
	"copy", "install-project", "command", "launcher", "app", "args",
	"port", "health-path", "health-expect", "check", "volumes", "run-mounts",
	"env", "tools", "absent",
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// DefaultSpec returns KTRDR's four images, read from the embedded spec.
// Each call returns a fresh copy.
func DefaultSpec() *Spec {
	s, err := parseSpec(DefaultSpecName, defaultSpecFile, nil)
	if err != nil || s == nil {
		// The embedded file is tested (TestDefaultSpec); a failure here is
		// a defect of this package, reported as an image set with none.
		return &Spec{Path: DefaultSpecName, Default: true, lines: map[string]int{}}
	}
	s.Default = true
	return s
}

// LoadSpec reads the spec of the project: its pyproject.toml's
// [tool.ktrdr-images] table, or KTRDR's default spec when it has none.
// Extras and groups are checked against the project, and a torch flavour
// against the lock (when lock is not nil).
func LoadSpec(proj *pyproject.Project, lock *uvlock.Lock) (*Spec, error) {
	var s *Spec
	if len(proj.Data) > 0 {
		var err error
		if s, err = parseSpec(proj.Path, proj.Data, proj); err != nil {
			return nil, err
		}
	}
	if s == nil {
		s = DefaultSpec()
	}
	if err := s.checkProject(proj, lock); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseSpec reads a spec from TOML text holding a [tool.ktrdr-images]
// table (a pyproject.toml, or a file of that table alone); name is used in
// errors. It returns nil, nil when there is no such table.
func ParseSpec(name string, data []byte) (*Spec, error) {
	return parseSpec(name, data, nil)
}

// specError is an error about the spec: the file, the line, where in the
// table, and what was expected.
func specErr(file string, line int, where, format string, args ...any) error {
	loc := file
	if line > 0 {
		loc = fmt.Sprintf("%s:%d", file, line)
	}
	return fmt.Errorf("%s: [%s] %s: %s", loc, SpecTable, where, fmt.Sprintf(format, args...))
}

func parseSpec(file string, data []byte, proj *pyproject.Project) (*Spec, error) {
	root, err := parseTree(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	tool := root.get("tool")
	if tool == nil || tool.table == nil {
		return nil, nil
	}
	n := tool.table.get("ktrdr-images")
	if n == nil {
		return nil, nil
	}
	if n.kind != unstable.Table {
		return nil, specErr(file, n.line, "the table", "expected a table, not a %s", kindName(n))
	}
	s := &Spec{Path: file, lines: map[string]int{}}
	t := n.table
	for _, k := range t.keys {
		v := t.entries[k]
		s.lines[k] = v.line
		if k == "image" {
			continue
		}
		if k == "default-target" {
			if s.DefaultTarget, err = v.str(); err != nil {
				return nil, specErr(file, v.line, "key "+k, "%v", err)
			}
			continue
		}
		kind, ok := settingKeys[k]
		if !ok {
			return nil, specErr(file, v.line, "key "+k, "unknown key: expected image (the images), default-target or a setting: %s", strings.Join(sortedSettingKeys(), ", "))
		}
		vals, err := settingValues(k, kind, v)
		if err != nil {
			return nil, specErr(file, v.line, "key "+k, "%v", err)
		}
		for _, kv := range vals {
			// Each value is checked as the option it sets.
			o := DefaultOptions()
			if err := o.assign(kv[0], kv[1]); err != nil {
				return nil, specErr(file, v.line, "key "+k, "%v", err)
			}
		}
		s.Settings = append(s.Settings, vals...)
	}
	imgs := t.get("image")
	if imgs == nil {
		return nil, specErr(file, n.line, "the table", "no images: expected at least one [[%s.image]] table with a name", SpecTable)
	}
	if imgs.kind != unstable.Array || len(imgs.elems) == 0 || imgs.elems[0].table == nil {
		return nil, specErr(file, imgs.line, "key image", "expected an array of tables ([[%s.image]]), not a %s", SpecTable, kindName(imgs))
	}
	seen := map[string]int{}
	for i, e := range imgs.elems {
		if e.table == nil {
			return nil, specErr(file, imgs.line, fmt.Sprintf("image %d", i+1), "expected a table, not a %s", kindName(e))
		}
		v, lines, err := parseImage(file, i, e)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[v.Name]; dup {
			return nil, specErr(file, lines["name"], "image "+strconv.Quote(v.Name), "two images are named %s (the first on line %d): names must be unique", v.Name, first)
		}
		seen[v.Name] = lines["name"]
		for k, l := range lines {
			s.lines["image "+v.Name+" "+k] = l
		}
		s.Variants = append(s.Variants, v)
	}
	if s.DefaultTarget == "" {
		s.DefaultTarget = s.Variants[0].Name
	} else if _, ok := seen[s.DefaultTarget]; !ok {
		return nil, specErr(file, s.lines["default-target"], "key default-target", "%q is not one of the images: expected one of %s", s.DefaultTarget, strings.Join(s.Names(), ", "))
	}
	return s, nil
}

func sortedSettingKeys() []string {
	out := make([]string, 0, len(settingKeys))
	for k := range settingKeys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// settingValues turns one setting into option key/values.
func settingValues(k string, kind byte, v *tnode) ([][2]string, error) {
	switch kind {
	case 's':
		s, err := v.str()
		return [][2]string{{k, s}}, err
	case 'i':
		n, err := v.integer()
		return [][2]string{{k, strconv.FormatInt(n, 10)}}, err
	case 'b':
		b, err := v.boolean()
		return [][2]string{{k, strconv.FormatBool(b)}}, err
	case 'l':
		l, err := v.strs()
		for _, s := range l {
			if strings.Contains(s, ",") {
				return nil, fmt.Errorf("%q: expected a package name (no commas)", s)
			}
		}
		return [][2]string{{k, strings.Join(l, ",")}}, err
	case 't':
		m, keys, err := v.strTable()
		if err != nil {
			return nil, err
		}
		var out [][2]string
		for _, lk := range keys {
			out = append(out, [2]string{"label." + lk, m[lk]})
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported setting")
}

// parseImage reads one image's table; lines are where its keys are.
func parseImage(file string, idx int, e *tnode) (Variant, map[string]int, error) {
	t := e.table
	lines := map[string]int{}
	where := fmt.Sprintf("image %d", idx+1)
	nameNode := t.get("name")
	if nameNode == nil {
		return Variant{}, nil, specErr(file, e.line, where, "no name: expected name = \"...\" (the target users select)")
	}
	name, err := nameNode.str()
	if err != nil {
		return Variant{}, nil, specErr(file, nameNode.line, where+", key name", "%v", err)
	}
	if !nameRE.MatchString(name) {
		return Variant{}, nil, specErr(file, nameNode.line, where+", key name", "%q: expected lower-case letters, digits, - and _ (a bake target name)", name)
	}
	where = "image " + strconv.Quote(name)
	v := Variant{Name: name, Torch: uvlock.FlavourNone, Image: name + ":latest"}
	bad := func(k string, n *tnode, err error) error {
		return specErr(file, n.line, where+", key "+k, "%v", err)
	}
	for _, k := range t.keys {
		n := t.entries[k]
		if !slices.Contains(imageKeys, k) {
			return Variant{}, nil, specErr(file, n.line, where, "unknown key %s: expected one of %s", k, strings.Join(imageKeys, ", "))
		}
		lines[k] = n.line
		var err error
		switch k {
		case "name":
		case "description":
			v.Description, err = n.str()
		case "image":
			v.Image, err = n.str()
		case "extras":
			v.Extras, err = n.strs()
		case "groups":
			v.Groups, err = n.strs()
		case "torch":
			var f string
			if f, err = n.str(); err == nil {
				v.Torch, err = uvlock.ParseFlavour(f)
			}
		case "cuda-base":
			v.CUDABase, err = n.boolean()
		case "copy":
			v.Copy, err = n.strs()
		case "install-project":
			v.InstallProject, err = n.boolean()
		case "command":
			v.Cmd, err = n.strs()
			if err == nil && len(v.Cmd) == 0 {
				err = fmt.Errorf("expected a command (an array of at least one string)")
			}
		case "launcher":
			v.Launcher, err = n.strs()
		case "app":
			v.App, err = n.str()
		case "args":
			v.ExtraArgs, err = n.strs()
		case "port":
			var p int64
			if p, err = n.integer(); err == nil {
				if p < 1 || p > 65535 {
					err = fmt.Errorf("%d is out of range: expected a port number from 1 to 65535", p)
				}
				v.Port = int(p)
			}
		case "health-path":
			v.HealthPath, err = n.str()
		case "health-expect":
			if n.kind != unstable.Table {
				err = fmt.Errorf("expected a table of the JSON keys and values the health answer must have, not a %s", kindName(n))
				break
			}
			v.HealthExpect = map[string]any{}
			for _, hk := range n.table.keys {
				val, herr := n.table.entries[hk].scalar()
				if herr != nil {
					err = fmt.Errorf("key %s: %w", hk, herr)
					break
				}
				v.HealthExpect[hk] = val
			}
		case "check":
			v.Check, err = n.strs()
			if err == nil && len(v.Check) == 0 {
				err = fmt.Errorf("expected a command (an array of at least one string)")
			}
		case "volumes":
			v.Volumes, err = n.strs()
		case "run-mounts":
			v.RunMounts, err = n.strs()
		case "env":
			var m map[string]string
			var keys []string
			if m, keys, err = n.strTable(); err == nil {
				for _, ek := range keys {
					v.Env = append(v.Env, ek+"="+m[ek])
				}
			}
		case "tools":
			if n.kind != unstable.Array {
				err = fmt.Errorf("expected an array of commands (arrays of strings), not a %s", kindName(n))
				break
			}
			for i, c := range n.elems {
				cmd, cerr := c.strs()
				if cerr == nil && len(cmd) == 0 {
					cerr = fmt.Errorf("expected a command (an array of at least one string)")
				}
				if cerr != nil {
					err = fmt.Errorf("tool %d: %w", i+1, cerr)
					break
				}
				v.Tools = append(v.Tools, cmd)
			}
		case "absent":
			v.Absent, err = n.strs()
		}
		if err != nil {
			return Variant{}, nil, bad(k, n, err)
		}
	}
	if len(v.Cmd) == 0 && len(v.Launcher) == 0 {
		v.Launcher = []string{"uvicorn"}
	}
	if key, err := v.check(); err != nil {
		if key == "" { // the image as a whole: its table's line
			return Variant{}, nil, specErr(file, e.line, where, "%v", err)
		}
		return Variant{}, nil, specErr(file, lines[key], where+", key "+key, "%v", err)
	}
	return v, lines, nil
}

// Validate checks a variant made in Go as the spec reader checks an
// [[tool.ktrdr-images.image]] table: its name, torch flavour, paths, port,
// health check and command (an ASGI app needs a launcher and a port, or
// Cmd is given instead). The error names the image and the spec key at
// fault. Extras and groups are checked against the project by Graphs.
func (v Variant) Validate() error {
	key, err := v.check()
	if err == nil {
		return nil
	}
	where := "image " + strconv.Quote(v.Name)
	if key != "" {
		where += ", key " + key
	}
	return fmt.Errorf("%s: %w", where, err)
}

// check is Validate's test: the spec key at fault ("" for the image as a
// whole) and what was expected. The spec reader checks each key's type as
// it reads it (and the name and port, whose errors differ there: a table
// without a name, port = 0); the values and the rules between keys are
// checked here, for the reader (with the key's line) and for Validate.
func (v Variant) check() (string, error) {
	if !nameRE.MatchString(v.Name) {
		return "name", fmt.Errorf("%q: expected lower-case letters, digits, - and _ (a bake target name)", v.Name)
	}
	if _, err := uvlock.ParseFlavour(string(v.Torch)); err != nil {
		return "torch", err
	}
	for _, ps := range []struct {
		key   string
		paths []string
	}{{"copy", v.Copy}, {"absent", v.Absent}, {"run-mounts", v.RunMounts}} {
		for _, p := range ps.paths {
			if err := checkRelPath(p); err != nil {
				return ps.key, err
			}
		}
	}
	for _, p := range v.Volumes {
		if !path.IsAbs(p) {
			return "volumes", fmt.Errorf("%q: expected an absolute path in the image", p)
		}
	}
	for _, e := range v.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return "env", fmt.Errorf("%q: expected NAME=VALUE", e)
		}
	}
	switch {
	case v.Port < 0 || v.Port > 65535:
		return "port", fmt.Errorf("%d is out of range: expected a port number from 1 to 65535", v.Port)
	case v.App != "" && !strings.Contains(v.App, ":"):
		return "app", fmt.Errorf("%q: expected module:attribute (an ASGI app)", v.App)
	case v.HealthPath != "" && !strings.HasPrefix(v.HealthPath, "/"):
		return "health-path", fmt.Errorf("%q: expected a URL path starting with /", v.HealthPath)
	case v.HealthPath != "" && v.Port == 0:
		return "health-path", fmt.Errorf("a health path needs a port: expected port = N beside it")
	case len(v.HealthExpect) > 0 && v.HealthPath == "":
		return "health-expect", fmt.Errorf("needs health-path: the JSON is what GET health-path answers")
	case v.CUDABase && v.Torch != uvlock.FlavourCUDA:
		return "cuda-base", fmt.Errorf("only an image with torch = \"cuda\" can take CUDA from a CUDA base (this one has torch = %q)", v.Torch)
	case len(v.Cmd) > 0 && (v.App != "" || len(v.Launcher) > 0 || len(v.ExtraArgs) > 0):
		return "command", fmt.Errorf("expected either command or launcher, app and args, not both")
	case len(v.Cmd) == 0 && v.App == "":
		return "", fmt.Errorf("no command: expected command = [...], or app = \"module:attr\" (with launcher, default [\"uvicorn\"]) and a port")
	case len(v.Cmd) == 0 && v.Port == 0:
		return "app", fmt.Errorf("an ASGI app is served on a port: expected port = N, or a command instead")
	case len(v.Cmd) == 0 && len(v.Launcher) == 0:
		return "launcher", fmt.Errorf("an ASGI app needs a launcher: expected launcher = [\"uvicorn\"] or the like")
	}
	return "", nil
}

// checkRelPath accepts a path inside the build context.
func checkRelPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("%q: expected a relative path inside the build context (clean, no ..)", p)
	}
	return nil
}

// checkProject checks the images against the project: their extras and
// groups exist, and the lock serves their torch flavour.
func (s *Spec) checkProject(proj *pyproject.Project, lock *uvlock.Lock) error {
	file := s.Path
	for _, v := range s.Variants {
		where := "image " + strconv.Quote(v.Name)
		for _, e := range v.Extras {
			if _, ok := proj.OptionalDependencies[pep508.NormalizeName(e)]; !ok {
				return specErr(file, s.line(v.Name, "extras"), where+", key extras", "unknown extra %q: %s declares %s", e, proj.Path, keysOrNone(proj.OptionalDependencies))
			}
		}
		for _, g := range v.Groups {
			if _, ok := proj.DependencyGroups[pep508.NormalizeName(g)]; !ok {
				return specErr(file, s.line(v.Name, "groups"), where+", key groups", "unknown dependency group %q: %s declares %s", g, proj.Path, keysOrNone(proj.DependencyGroups))
			}
		}
		if lock == nil || v.Torch == uvlock.FlavourNone {
			continue
		}
		// The flavour is checked where the lock can serve any image: the
		// default platform, and a Python the project allows.
		t := Target{}
		if _, err := v.Pins(proj, lock, t); err != nil {
			if !strings.Contains(err.Error(), "torch") {
				continue // not about the flavour: Graphs reports it with the options
			}
			return specErr(file, s.line(v.Name, "torch"), where+", key torch", "the lock cannot serve torch = %q: %v", v.Torch, err)
		}
	}
	return nil
}

func keysOrNone[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// line is the line of an image's key, 0 when unknown.
func (s *Spec) line(name, key string) int {
	if s.lines == nil {
		return 0
	}
	return s.lines["image "+name+" "+key]
}

// Names returns the image names in the spec's order.
func (s *Spec) Names() []string {
	var out []string
	for _, v := range s.Variants {
		out = append(out, v.Name)
	}
	return out
}

// Lookup returns the image with that name, or an error listing the valid
// names and saying where they come from.
func (s *Spec) Lookup(name string) (Variant, error) {
	for _, v := range s.Variants {
		if v.Name == name {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("unknown variant %q: expected one of %s (from %s)", name, strings.Join(s.Names(), ", "), s.source())
}

func (s *Spec) source() string {
	if s.Default {
		return DefaultSpecName
	}
	return s.Path + " [" + SpecTable + "]"
}

// MissingPath names the spec's line for a copied path the build context
// lacks.
func (s *Spec) MissingPath(v Variant, p, contextName string) error {
	return specErr(s.Path, s.line(v.Name, "copy"), "image "+strconv.Quote(v.Name)+", key copy", "copies %s, which the build context %s does not have (it copies %s); check the context directory and its .dockerignore", p, contextName, strings.Join(v.Copy, ", "))
}

// KeyError is an error about one key of an image, found by a reader of the
// spec outside this package (bake-file): it names the spec's file and line.
func (s *Spec) KeyError(v Variant, key string, err error) error {
	return specErr(s.Path, s.line(v.Name, key), "image "+strconv.Quote(v.Name)+", key "+key, "%v", err)
}

// Setting is the value of a setting the spec gives ("registry", "tag"...),
// and whether it gives one.
func (s *Spec) Setting(key string) (string, bool) {
	for _, kv := range s.Settings {
		if kv[0] == key {
			return kv[1], true
		}
	}
	return "", false
}

// Apply gives o the spec's settings where o still has the built-in default
// and the option was not set with Set (--opt, a build arg): the project's
// values come between the built-in defaults and the user's.
func (s *Spec) Apply(o Options) (Options, error) {
	def := DefaultOptions()
	for _, kv := range s.Settings {
		k := kv[0]
		if o.set[k] {
			continue
		}
		if strings.HasPrefix(k, "label.") {
			if _, ok := o.Labels[strings.TrimPrefix(k, "label.")]; ok {
				continue
			}
		} else if o.get(k) != def.get(k) {
			continue
		}
		if err := o.assign(k, kv[1]); err != nil {
			return o, specErr(s.Path, s.lines[settingKeyOf(k)], "key "+settingKeyOf(k), "%v", err)
		}
	}
	if err := o.CheckVariants(s); err != nil {
		return o, err
	}
	return o, nil
}

func settingKeyOf(k string) string {
	if strings.HasPrefix(k, "label.") {
		return "labels"
	}
	return k
}
