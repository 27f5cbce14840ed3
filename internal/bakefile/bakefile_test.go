package bakefile

import (
	"bytes"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// parsed is a bake file read back: the variables' defaults and each
// block's attributes, evaluated with the variables at their defaults
// (or the values given).
type parsed struct {
	vars    map[string]string
	groups  map[string][]string
	targets map[string]map[string]cty.Value
	order   []string
}

func parse(t *testing.T, src []byte, set map[string]string) parsed {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL(src, "docker-bake.hcl")
	if diags.HasErrors() {
		t.Fatalf("not HCL: %v\n%s", diags, src)
	}
	if got := hclwrite.Format(src); !bytes.Equal(got, src) {
		t.Errorf("not formatted as hclwrite formats it:\n%s", got)
	}
	body := f.Body.(*hclsyntax.Body)
	p := parsed{vars: map[string]string{}, groups: map[string][]string{}, targets: map[string]map[string]cty.Value{}}
	for _, b := range body.Blocks {
		if b.Type != "variable" {
			continue
		}
		v, d := b.Body.Attributes["default"].Expr.Value(nil)
		if d.HasErrors() {
			t.Fatalf("variable %s: %v", b.Labels[0], d)
		}
		p.vars[b.Labels[0]] = v.AsString()
	}
	vals := map[string]cty.Value{}
	for k, v := range p.vars {
		vals[k] = cty.StringVal(v)
	}
	for k, v := range set {
		vals[k] = cty.StringVal(v)
	}
	ctx := &hcl.EvalContext{Variables: vals}
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
		case "group":
			v, d := b.Body.Attributes["targets"].Expr.Value(ctx)
			if d.HasErrors() {
				t.Fatal(d)
			}
			p.groups[b.Labels[0]] = strs(t, v)
		case "target":
			attrs := map[string]cty.Value{}
			for name, a := range b.Body.Attributes {
				if name == "platforms" && strings.HasPrefix(b.Labels[0], "_") {
					// split() is bake's function; keep the expression's source.
					attrs[name] = cty.StringVal(string(a.Expr.Range().SliceBytes(src)))
					continue
				}
				v, d := a.Expr.Value(ctx)
				if d.HasErrors() {
					t.Fatalf("target %s, %s: %v", b.Labels[0], name, d)
				}
				attrs[name] = v
			}
			p.targets[b.Labels[0]] = attrs
			p.order = append(p.order, b.Labels[0])
		default:
			t.Errorf("unexpected block %s", b.Type)
		}
	}
	return p
}

func strs(t *testing.T, v cty.Value) []string {
	t.Helper()
	var out []string
	l, err := convert.Convert(v, cty.List(cty.String))
	if err == nil {
		err = gocty.FromCtyValue(l, &out)
	}
	if err != nil {
		t.Fatalf("%#v: %v", v, err)
	}
	return out
}

const twoImages = `
[tool.ktrdr-images]
user = "app"

[[tool.ktrdr-images.image]]
name = "api"
image = "acme/api:1.2"
app = "app.api:app"
port = 8080

[[tool.ktrdr-images.image]]
name = "trainer"
torch = "cuda"
command = ["python", "-m", "app.train"]
`

func TestTwoImages(t *testing.T) {
	spec, err := variants.ParseSpec("app/pyproject.toml", []byte(twoImages))
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Spec: spec, Project: "Acme.App", Context: "../app", Command: "ktrdr-images bake-file --context ../app --output docker-bake.hcl"}
	out, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Generate(p)
	if !bytes.Equal(out, again) {
		t.Error("two runs differ")
	}
	for _, want := range []string{
		"# docker buildx bake for Acme.App's two images, built by the ktrdr-images\n",
		"# Generated from the [tool.ktrdr-images] table of ../app/pyproject.toml by\n",
		"#   ktrdr-images bake-file --context ../app --output docker-bake.hcl\n",
		"#   docker buildx bake                       # both (the default group)\n",
		"#   docker buildx bake api --push\n",
		"# TAG tags the images the spec names with latest or no tag; acme/api:1.2 keeps\n# its own.\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	b := parse(t, out, nil)
	if b.vars["REGISTRY"] != DefaultRegistry || b.vars["TAG"] != "latest" || b.vars["CONTEXT"] != "../app" || b.vars["PROBE"] != "true" {
		t.Errorf("variables %v", b.vars)
	}
	if got := strings.Join(b.groups["default"], ","); got != "api,trainer" {
		t.Errorf("default group %s", got)
	}
	if got := strings.Join(b.order, ","); got != "_acme-app,api,trainer" {
		t.Fatalf("targets %s", got)
	}
	shared := b.targets["_acme-app"]
	if shared["context"].AsString() != "../app" || shared["platforms"].AsString() != `split(",", PLATFORMS)` {
		t.Errorf("shared target: %v", shared)
	}
	args := shared["args"].AsValueMap()
	if args["BUILDKIT_SYNTAX"].AsString() != DefaultFrontend || len(args) != 15 {
		t.Errorf("args %v", args)
	}
	if shared["secret"].LengthInt() != 0 {
		t.Errorf("secret without INDEX_AUTH_SECRET: %v", shared["secret"])
	}
	api, tr := b.targets["api"], b.targets["trainer"]
	if strs(t, api["inherits"])[0] != "_acme-app" || api["target"].AsString() != "api" || tr["target"].AsString() != "trainer" {
		t.Errorf("api %v, trainer %v", api, tr)
	}
	if got := strs(t, api["tags"]); len(got) != 1 || got[0] != DefaultRegistry+"/acme/api:1.2" {
		t.Errorf("api tags %v", got)
	}
	if got := strs(t, tr["tags"]); len(got) != 1 || got[0] != DefaultRegistry+"/trainer:latest" {
		t.Errorf("trainer tags %v", got)
	}
	if _, ok := api["platforms"]; ok {
		t.Errorf("api (no CUDA) has its own platforms: %v", api["platforms"])
	}
	if got := strs(t, tr["platforms"]); len(got) != 1 || got[0] != "linux/amd64" {
		t.Errorf("trainer (CUDA) platforms %v", got)
	}

	// REGISTRY and TAG given: TAG replaces the latest tag only.
	b = parse(t, out, map[string]string{"REGISTRY": "ghcr.io/acme", "TAG": "sha-1", "INDEX_AUTH_SECRET": "idx"})
	if got := strs(t, b.targets["api"]["tags"])[0]; got != "ghcr.io/acme/acme/api:1.2" {
		t.Errorf("api tag %s", got)
	}
	if got := strs(t, b.targets["trainer"]["tags"])[0]; got != "ghcr.io/acme/trainer:sha-1" {
		t.Errorf("trainer tag %s", got)
	}
	if got := strs(t, b.targets["_acme-app"]["secret"]); len(got) != 1 || got[0] != "id=idx,env=INDEX_PASSWORD" {
		t.Errorf("secret %v", got)
	}
}

// With the variables' defaults, every tag is the name the CLI pushes with
// the spec's settings (and the registry the file defaults to).
func TestTagsAreTheCLIs(t *testing.T) {
	for _, tc := range []struct{ name, settings string }{
		{"no settings", ""},
		{"registry", "registry = \"reg.example/team/\"\n"},
		{"tag", "tag = \"v7\"\n"},
		{"both", "registry = \"localhost:5000\"\ntag = \"v7\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "[tool.ktrdr-images]\n" + tc.settings + `
[[tool.ktrdr-images.image]]
name = "a"
image = "a:dev"
command = ["a"]
[[tool.ktrdr-images.image]]
name = "b"
image = "org/b"
command = ["b"]
[[tool.ktrdr-images.image]]
name = "c"
image = "team/c:latest"
command = ["c"]
[[tool.ktrdr-images.image]]
name = "d"
command = ["d"]
`
			spec, err := variants.ParseSpec("pyproject.toml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Generate(Params{Spec: spec, Context: ".", Command: "ktrdr-images bake-file"})
			if err != nil {
				t.Fatal(err)
			}
			b := parse(t, out, nil)
			o, err := spec.Apply(variants.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if o.Registry == "" {
				o.Registry = DefaultRegistry
			}
			if b.vars["REGISTRY"] != o.Registry {
				t.Errorf("REGISTRY %s, the CLI's %s", b.vars["REGISTRY"], o.Registry)
			}
			for _, v := range spec.Variants {
				cli, err := o.ImageName(v)
				if err != nil {
					t.Fatal(err)
				}
				tag := strs(t, b.targets[v.Name]["tags"])[0]
				ref, err := ImageRef(v, o.Tag != "", b.vars["REGISTRY"], b.vars["TAG"])
				if err != nil {
					t.Fatal(err)
				}
				named, err := reference.ParseNormalizedNamed(tag)
				if err != nil {
					t.Fatalf("%s: bake tag %s: %v", v.Name, tag, err)
				}
				if got := reference.TagNameOnly(named).String(); got != cli || ref != cli {
					t.Errorf("%s: bake tags %s (%s), the CLI pushes %s", v.Name, tag, ref, cli)
				}
			}
			if o.Tag != "" {
				for _, n := range []string{"a", "b", "c", "d"} {
					if got := strs(t, b.targets[n]["tags"])[0]; !strings.HasSuffix(got, ":v7") {
						t.Errorf("%s: tag setting v7, bake tag %s", n, got)
					}
				}
			}
		})
	}
}

func TestKTRDRTags(t *testing.T) {
	out, err := Generate(Params{Spec: variants.DefaultSpec(), Project: "ktrdr", Context: "examples/ktrdr", Command: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`tags     = ["${REGISTRY}/ktrdr-backend:dev"]`,
		`tags     = ["${REGISTRY}/ktrdr-backend:prod"]`,
		`tags     = ["${REGISTRY}/ktrdr-worker-cpu:${TAG}"]`,
		`tags      = ["${REGISTRY}/ktrdr-worker-gpu:${TAG}"]` + "\n  platforms = [\"linux/amd64\"]\n",
		`target "_ktrdr" {`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %s", want)
		}
	}
	if strings.Count(string(out), "platforms = [\"linux/amd64\"]") != 1 {
		t.Error("only worker-gpu should be amd64-only")
	}
}

func TestBadImage(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"Api:1", `pyproject.toml:6: [tool.ktrdr-images] image "api", key image: "Api:1": expected an image name, repository[:tag]`},
		{"api@sha256:" + strings.Repeat("a", 64), `pyproject.toml:6: [tool.ktrdr-images] image "api", key image: "api@sha256:aaaa`},
	} {
		src := "[tool.ktrdr-images]\n\n[[tool.ktrdr-images.image]]\nname = \"api\"\ncommand = [\"a\"]\nimage = \"" + tc.image + "\"\n"
		spec, err := variants.ParseSpec("pyproject.toml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Generate(Params{Spec: spec, Context: "."})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.image, err, tc.want)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := quote(`a"b\c${d}%{e}`); got != `"a\"b\\c$${d}%%{e}"` {
		t.Errorf("quote: %s", got)
	}
	if got := SharedTarget("My_Project.Name"); got != "_my-project-name" {
		t.Errorf("shared target %s", got)
	}
	if got := SharedTarget(""); got != "_ktrdr" {
		t.Errorf("shared target %s", got)
	}
}
