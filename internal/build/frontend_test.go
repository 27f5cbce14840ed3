package build

import (
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/variants"
)

func TestOptionsFromBuildArgs(t *testing.T) {
	o, probe, err := OptionsFromBuildArgs(map[string]string{
		"PYTHON_BASE":       "127.0.0.1:5000/library/python:3.13-slim",
		"installer":         "pip",
		"port.worker-cpu":   "5004",
		"SOURCE_DATE_EPOCH": "1700000000",
		"PROBE":             "false",
		"HTTP_PROXY":        "http://proxy:3128",
		"BUILDKIT_SYNTAX":   "127.0.0.1:5000/ktrdr-images/frontend",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.PythonBase != "127.0.0.1:5000/library/python:3.13-slim" || o.Installer != "pip" || o.Ports["worker-cpu"] != 5004 || o.SourceDateEpoch == nil || o.SourceDateEpoch.Unix() != 1700000000 || probe {
		t.Errorf("options %+v probe %v", o, probe)
	}
	for args, want := range map[string]string{
		"COLOUR=blue":         `build-arg COLOUR: unknown option "colour": expected one of`,
		"UV_VERSION=latest":   "uv version",
		"PROBE=maybe":         "expected true or false",
		"port.Worker_TPU=1":   "Worker_TPU",
		"PLATFORM=linux/s390": "option platform",
	} {
		k, v, _ := strings.Cut(args, "=")
		_, _, err := OptionsFromBuildArgs(map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", args, err, want)
		}
	}
}

func TestSubrequestAnswers(t *testing.T) {
	spec := variants.DefaultSpec()
	l := listTargets(spec)
	if len(l.Targets) != 4 || !l.Targets[1].Default || l.Targets[1].Name != "backend-prod" {
		t.Fatalf("targets %+v", l)
	}
	for _, tg := range l.Targets {
		if tg.Description == "" {
			t.Errorf("target %s has no description", tg.Name)
		}
	}
	o, err := describe(spec, "worker-cpu")
	if err != nil || !strings.Contains(o.Description, "CPU") || len(o.Args) < 10 {
		t.Errorf("outline %+v %v", o, err)
	}
	// A variant in a build arg is checked against the spec, once the
	// context is read.
	o2, _, err := OptionsFromBuildArgs(map[string]string{"port.worker-tpu": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Apply(o2); err == nil || !strings.Contains(err.Error(), `option port.worker-tpu: unknown variant "worker-tpu"`) {
		t.Errorf("port.worker-tpu: got %v", err)
	}
	if _, err := describe(spec, "worker-tpu"); err == nil {
		t.Error("outline of an unknown target accepted")
	}
}

// FuzzOptionsFromBuildArgs: any build arg, as a client may send it, is an
// option, an error naming the build arg, or ignored (a client's own);
// never a panic, and never options that fail their own validation.
func FuzzOptionsFromBuildArgs(f *testing.F) {
	for _, kv := range [][2]string{
		{"PYTHON_BASE", "127.0.0.1:5000/library/python:3.13-slim"}, {"port.worker-cpu", "70000"}, {"LAYER_THRESHOLD", "1.5MiB"},
		{"SOURCE_DATE_EPOCH", "-1"}, {"INDEX_URL", "http://u:p@h/simple"}, {"label.org.example", "x\x00y"}, {"image.worker-gpu", "UPPER/x"},
		{"PROBE", "maybe"}, {"BUILDKIT_SYNTAX", "x"}, {"http_proxy", "http://p"}, {"INDEX_USERNAME", "ci"}, {"UID", "99999999999999999999"},
	} {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		o, _, err := OptionsFromBuildArgs(map[string]string{k: v})
		if err != nil {
			if !strings.Contains(err.Error(), "build-arg") && !strings.Contains(err.Error(), "option") {
				t.Errorf("build-arg %q=%q: error naming neither the build arg nor an option: %v", k, v, err)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Errorf("build-arg %q=%q accepted, but the options do not validate: %v", k, v, err)
		}
	})
}

func FuzzParseProvenance(f *testing.F) {
	for _, s := range []string{"", "true", "mode=max", "mode=min,version=v1", "mode", "=", ",,", "mode=max,mode=min"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseProvenance(s)
		if err == nil && got != "" && !strings.HasPrefix(got, "mode=") && !strings.Contains(got, "mode=") {
			t.Errorf("ParseProvenance(%q) = %q: no mode", s, got)
		}
	})
}
