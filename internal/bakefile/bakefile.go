// Package bakefile writes a docker-bake.hcl for the images of a spec: a
// target per image, built by the ktrdr-images frontend (BUILDKIT_SYNTAX, no
// Dockerfile), and the variables that forward the common options as build
// args. `ktrdr-images bake-file` prints it; the repository's own
// docker-bake.hcl is its output for examples/ktrdr.
package bakefile

import (
	"fmt"
	"path"
	"strings"

	"github.com/distribution/reference"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
)

// Defaults of the variables the spec does not set: the offline world's
// registry (integration/world) and the frontend image pushed there.
const (
	DefaultRegistry = "127.0.0.1:5000/ktrdr"
	DefaultTag      = "latest"
	DefaultFrontend = "127.0.0.1:5000/ktrdr-images/frontend:latest"
	// CUDAPlatform is the only platform of an image with torch = "cuda":
	// the CUDA wheels are amd64 only.
	CUDAPlatform = "linux/amd64"
	// DefaultPlatforms are the images' platforms (PLATFORMS): both, as
	// KTRDR's CI pushes them; an image with torch = "cuda" keeps
	// CUDAPlatform alone. PLATFORMS=linux/amd64 builds one.
	DefaultPlatforms = "linux/amd64,linux/arm64"
)

// Params is what a bake file is made from.
type Params struct {
	// Spec gives the images, in order, and the registry and tag settings.
	Spec *variants.Spec
	// Project is the project's name (pyproject.toml's [project].name);
	// "" without a project. The shared target is "_" and its normal form.
	Project string
	// Context is the default of the CONTEXT variable: the build context
	// relative to the directory bake runs in (the file's).
	Context string
	// Command is the command that writes this file again, for its header
	// (e.g. "ktrdr-images bake-file --context examples/ktrdr --output
	// docker-bake.hcl").
	Command string
}

// Registry is the REGISTRY variable's default: the spec's registry setting,
// else DefaultRegistry.
func Registry(s *variants.Spec) string {
	if r, ok := s.Setting("registry"); ok && r != "" {
		return strings.TrimSuffix(r, "/")
	}
	return DefaultRegistry
}

// Tag is the TAG variable's default: the spec's tag setting, else
// DefaultTag. everyImage tells that the spec sets one, so that TAG replaces
// every image's tag, as the CLI's tag option does.
func Tag(s *variants.Spec) (tag string, everyImage bool) {
	if t, ok := s.Setting("tag"); ok && t != "" {
		return t, true
	}
	return DefaultTag, false
}

// ImageTag is the bake tag of an image, an HCL template of the REGISTRY and
// TAG variables. The image's name is split into repository and tag as the
// CLI's image name is (variants.Options.ImageName: the tag follows the last
// colon after the last slash). TAG replaces the tag when the spec sets a
// tag (the CLI then replaces every image's), or when the image's tag is
// latest or absent: with the variables' defaults every tag is the name the
// CLI pushes, with the registry prefixed. Other tags stay (KTRDR's
// ktrdr-backend:dev and :prod: a TAG for all would give both one name).
func ImageTag(v variants.Variant, tagEveryImage bool) string {
	repo, tag := splitTag(v.Image)
	if tagEveryImage || tag == "" || tag == DefaultTag {
		return "${REGISTRY}/" + escape(repo) + ":${TAG}"
	}
	return "${REGISTRY}/" + escape(v.Image)
}

// ImageRef is ImageTag with the variables' values given: the reference bake
// pushes, checked to be a name bake can push (repository[:tag], no digest).
func ImageRef(v variants.Variant, tagEveryImage bool, registry, tag string) (string, error) {
	repo, own := splitTag(v.Image)
	name := registry + "/" + v.Image
	if tagEveryImage || own == "" || own == DefaultTag {
		name = registry + "/" + repo + ":" + tag
	}
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", fmt.Errorf("%q: expected an image name, repository[:tag], that gives a valid reference under the registry (%s: %v)", v.Image, name, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return "", fmt.Errorf("%q: expected repository[:tag], not a digest: bake pushes the image under a tag", v.Image)
	}
	return reference.TagNameOnly(ref).String(), nil
}

func splitTag(name string) (repo, tag string) {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[:i], name[i+1:]
	}
	return name, ""
}

// SharedTarget is the name of the abstract target every image inherits:
// "_" and the project's normal name ("_ktrdr" without a project).
func SharedTarget(project string) string {
	n := strings.ReplaceAll(pep508.NormalizeName(project), ".", "-")
	if n == "" {
		n = "ktrdr"
	}
	return "_" + n
}

// optionArgs are the build args the file forwards, each from the variable
// of the same name: the common options (every option is a build arg, see
// `ktrdr-images build --help`), with the comment above a variable.
var optionArgs = []struct{ name, def, comment string }{
	{"PYTHON_BASE", "", ""},
	{"CUDA_BASE", "", ""},
	{"INSTALLER", "", ""},
	{"UV_IMAGE", "", ""},
	{"UV_VERSION", "", ""},
	{"INDEX_URL", "", ""},
	{"CPU_INDEX_URL", "", ""},
	{"CUDA_INDEX_URL", "", ""},
	{"PROBE", "true", ""},
	{"REVISION", "", "OCI revision and source (labels, annotations, the SBOM's project entry)."},
	{"SOURCE", "", ""},
	{"INDEX_AUTH_SECRET", "", "A private index: INDEX_AUTH_SECRET names the secret, INDEX_SECRET_FROM says where buildx reads it (env=VAR or src=FILE); with INDEX_USERNAME it is the password or token, without it a netrc file."},
	{"INDEX_USERNAME", "", ""},
}

// Generate writes the bake file: deterministic, formatted as hclwrite (and
// terraform fmt) format HCL.
func Generate(p Params) ([]byte, error) {
	s := p.Spec
	if s == nil || len(s.Variants) == 0 {
		return nil, fmt.Errorf("bake file: the spec has no images")
	}
	registry := Registry(s)
	tag, every := Tag(s)
	for _, v := range s.Variants {
		if _, err := ImageRef(v, every, registry, tag); err != nil {
			return nil, s.KeyError(v, "image", err)
		}
	}
	shared := SharedTarget(p.Project)
	var b strings.Builder
	comment := func(text string) {
		for _, l := range wrap(text, 78-2) {
			b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
		}
	}
	variable := func(name, def string) {
		fmt.Fprintf(&b, "variable %q {\n  default = %s\n}\n", name, quote(def))
	}

	owner := p.Project + "'s"
	if s.Default {
		owner = "KTRDR's"
	} else if p.Project == "" {
		owner = "the project's"
	}
	comment(fmt.Sprintf("docker buildx bake for %s %s, built by the ktrdr-images frontend: no Dockerfile, the frontend image is named by BUILDKIT_SYNTAX.", owner, count(len(s.Variants), "image", "images")))
	from := "the [" + variants.SpecTable + "] table of " + path.Join(p.Context, "pyproject.toml")
	if s.Default {
		from = "KTRDR's default spec (the project has no [" + variants.SpecTable + "] table)"
	}
	comment("Generated from " + from + " by `ktrdr-images bake-file`: change the spec, not this file, and run it again where this file is:")
	b.WriteString("#   " + p.Command + "\n")
	b.WriteString("#\n")
	all := "all " + numberWord(len(s.Variants))
	switch len(s.Variants) {
	case 1:
		all = "the one image"
	case 2:
		all = "both"
	}
	def := s.DefaultTarget
	fmt.Fprintf(&b, "#   %-40s # %s (the default group)\n", "docker buildx bake", all)
	fmt.Fprintf(&b, "#   docker buildx bake %s --push\n", def)
	b.WriteString("#   REGISTRY=ghcr.io/me TAG=sha-abc docker buildx bake --push\n")
	fmt.Fprintf(&b, "#   docker buildx bake --call=targets %s\n", def)
	fmt.Fprintf(&b, "#   PLATFORMS=linux/amd64 docker buildx bake --load %s  # one platform, into docker\n", def)
	b.WriteString("#   docker buildx bake --sbom=true --provenance=mode=max --push\n")
	b.WriteString("#   INDEX_URL=https://pypi.corp/simple INDEX_AUTH_SECRET=index INDEX_USERNAME=ci \\\n")
	b.WriteString("#     INDEX_PASSWORD=... docker buildx bake --push\n")
	b.WriteString("#\n")
	comment("Every ktrdr-images option is a build arg (see `ktrdr-images build --help`); the variables below forward the common ones, empty meaning the default.")
	b.WriteString("\n")

	variable("REGISTRY", registry)
	if every {
		comment("TAG replaces every image's tag (the spec's tag setting, as the CLI's).")
	} else {
		var kept []string
		for _, v := range s.Variants {
			if _, t := splitTag(v.Image); t != "" && t != DefaultTag {
				kept = append(kept, v.Image)
			}
		}
		if len(kept) > 0 {
			keep := " keep theirs."
			if len(kept) == 1 {
				keep = " keeps its own."
			}
			comment("TAG tags the images the spec names with latest or no tag; " + andList(kept) + keep)
		}
	}
	variable("TAG", tag)
	variable("FRONTEND", DefaultFrontend)
	variable("PLATFORMS", DefaultPlatforms)
	variable("CONTEXT", p.Context)
	variable("SOURCE_DATE_EPOCH", "")
	for _, a := range optionArgs {
		if a.comment != "" {
			comment(a.comment)
		}
		variable(a.name, a.def)
	}
	variable("INDEX_SECRET_FROM", "env=INDEX_PASSWORD")
	b.WriteString("\n")

	names := make([]string, len(s.Variants))
	for i, v := range s.Variants {
		names[i] = quote(v.Name)
	}
	fmt.Fprintf(&b, "group \"default\" {\n  targets = [%s]\n}\n\n", strings.Join(names, ", "))

	fmt.Fprintf(&b, "target %q {\n", shared)
	b.WriteString("  context = CONTEXT\n  platforms = split(\",\", PLATFORMS)\n  args = {\n")
	b.WriteString("    BUILDKIT_SYNTAX = FRONTEND\n    SOURCE_DATE_EPOCH = SOURCE_DATE_EPOCH\n")
	for _, a := range optionArgs {
		fmt.Fprintf(&b, "    %s = %s\n", a.name, a.name)
	}
	b.WriteString("  }\n")
	b.WriteString("  secret = INDEX_AUTH_SECRET == \"\" ? [] : [\"id=${INDEX_AUTH_SECRET},${INDEX_SECRET_FROM}\"]\n}\n")

	for _, v := range s.Variants {
		fmt.Fprintf(&b, "\ntarget %q {\n", v.Name)
		fmt.Fprintf(&b, "  inherits = [%s]\n", quote(shared))
		fmt.Fprintf(&b, "  target = %s\n", quote(v.Name))
		fmt.Fprintf(&b, "  tags = [\"%s\"]\n", ImageTag(v, every))
		if v.Torch == uvlock.FlavourCUDA {
			fmt.Fprintf(&b, "  platforms = [%s]\n", quote(CUDAPlatform))
		}
		b.WriteString("}\n")
	}
	return hclwrite.Format([]byte(b.String())), nil
}

// quote is s as an HCL string literal: escaped, and with ${ and %{ kept
// literal rather than read as a template.
func quote(s string) string {
	return `"` + escape(s) + `"`
}

func escape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", "$${", "%{", "%%{")
	return r.Replace(s)
}

// wrap breaks text into lines of at most width columns at spaces (a
// longer word stays whole on its own line).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case len(line)+1+len(w) <= width:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// andList is "a", "a and b", "a, b and c".
func andList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

func count(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return numberWord(n) + " " + many
}

func numberWord(n int) string {
	words := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"}
	if n >= 0 && n < len(words) {
		return words[n]
	}
	return fmt.Sprint(n)
}
