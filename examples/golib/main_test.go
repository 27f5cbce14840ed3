package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// The example's project, relative to this package's directory.
const ktrdr = "../ktrdr"

// TestPlan runs the plan mode on examples/ktrdr: every image of the set,
// the project's four and api-debug, is printed with its ref and an LLB
// digest, and api-debug is the default target's copy with its own graph.
func TestPlan(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--context", ktrdr}, &out); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z0-9-]+)\t(\S+)\tlinux/amd64\t(sha256:[0-9a-f]{64})\t\d+ layers on \S+$`).FindAllStringSubmatch(out.String(), -1) {
		got[m[1]] = m[2:]
	}
	for name, ref := range map[string]string{
		"backend-dev":  "docker.io/library/ktrdr-backend:dev",
		"backend-prod": "docker.io/library/ktrdr-backend:prod",
		"worker-cpu":   "docker.io/library/ktrdr-worker-cpu:latest",
		"worker-gpu":   "docker.io/library/ktrdr-worker-gpu:latest",
		"api-debug":    "docker.io/library/ktrdr-backend:debug",
	} {
		g, ok := got[name]
		if !ok {
			t.Errorf("image %s is not in the plan", name)
			continue
		}
		if g[0] != ref {
			t.Errorf("image %s: ref %s, want %s", name, g[0], ref)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d images planned, want 5:\n%s", len(got), out.String())
	}
	if d, p := got["api-debug"], got["backend-prod"]; d != nil && p != nil && d[1] == p[1] {
		t.Errorf("api-debug has backend-prod's graph %s: its config differs, so must its digest", d[1])
	}
	if !strings.Contains(out.String(), "\tlayers: user, runtime packages, venv, pkg ") {
		t.Errorf("no layer list:\n%s", out.String())
	}
}

// TestPlanOptions: options and image names given on the command line
// reach the plan (a registry prefixes the ref; one image only).
func TestPlanOptions(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--context", ktrdr, "--registry", "registry.example.com/team", "--opt", "tag=v1", "api-debug"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "api-debug\tregistry.example.com/team/ktrdr-backend:v1\t") || strings.Count(out.String(), "sha256:") != 1 {
		t.Errorf("got\n%s", out.String())
	}
}

// TestErrors: a bad option, a bad image name and a directory without a
// project are errors naming what is at fault.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown option", []string{"--opt", "pyton-version=3.12"}, `unknown option "pyton-version"`},
		{"bad value", []string{"--opt", "uid=root"}, `option uid="root": expected a number`},
		{"no =", []string{"--opt", "uid"}, `--opt "uid": expected KEY=VALUE`},
		{"invalid value", []string{"--opt", "installer=conda"}, `option installer "conda": expected uv or pip`},
		{"unknown image", []string{"api-release"}, `unknown variant "api-release": expected one of backend-dev, backend-prod, worker-cpu, worker-gpu, api-debug`},
		{"no project", []string{"--context", "."}, "pyproject.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--context", ktrdr}, tc.args...)
			err := run(args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant an error containing %s", err, tc.want)
			}
		})
	}
}
