package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseOutputs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // error text; empty for success
	}{
		{[]string{"type=local,dest=out"}, ""},
		{[]string{"type=image,name=r/x,push=true,compression=zstd"}, ""},
		{[]string{" "}, "option --output: empty value"},
		{[]string{"dest=out/x.tar"}, "option --output: "},
	} {
		_, err := parseOutputs(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one starting with %q", tc.in, err, tc.want)
		}
	}
}

func TestSolveOptSubstitutesAndPushes(t *testing.T) {
	o := variants.DefaultOptions()
	o.Registry = "127.0.0.1:5000/ns"
	dir := t.TempDir()
	so, err := solveOpt(RunOptions{
		Options: o, Push: true,
		Outputs:     []string{"type=oci,dest=" + dir + "/out/{variant}.tar"},
		ImportCache: []string{"type=registry,ref=r/cache:{variant}"},
	}, workerCPU, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(so.Exports) != 2 {
		t.Fatalf("exports: %+v, want the oci output and the push", so.Exports)
	}
	// buildctl's parser opens the file: the directory was made and
	// {variant} replaced.
	if _, err := os.Stat(filepath.Join(dir, "out", "worker-cpu.tar")); err != nil {
		t.Errorf("oci dest: %v", err)
	}
	if name := so.Exports[1].Attrs["name"]; name != "127.0.0.1:5000/ns/ktrdr-worker-cpu:latest" {
		t.Errorf("pushed name %q", name)
	}
	if ref := so.CacheImports[0].Attrs["ref"]; ref != "r/cache:worker-cpu" {
		t.Errorf("cache import ref %q", ref)
	}
	if _, err := solveOpt(RunOptions{Options: o, Outputs: []string{""}}, workerCPU, nil); err == nil || !strings.Contains(err.Error(), "empty value") {
		t.Errorf("an empty --output: %v", err)
	}
}

func TestParseProvenance(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "false": "", "true": "mode=min", "mode=max": "mode=max", "mode=min,version=v1": "mode=min,version=v1", "version=v1": "mode=min,version=v1",
	} {
		if got, err := ParseProvenance(in); err != nil || got != want {
			t.Errorf("ParseProvenance(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"mode=full": `mode "full": expected min or max`, "max": "expected true, false or mode=min|max", "colour=blue": `unknown key "colour"`} {
		if _, err := ParseProvenance(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseProvenance(%q): %v, want %q", in, err, want)
		}
	}
}

func TestSolveOptSecretsAndProvenance(t *testing.T) {
	o := variants.DefaultOptions()
	so, err := solveOpt(RunOptions{Options: o, Provenance: "mode=max", Secrets: []string{"id=idx,env=HOME"}}, workerCPU, nil)
	if err != nil {
		t.Fatal(err)
	}
	if so.FrontendAttrs["attest:provenance"] != "mode=max" || len(so.Session) != 2 {
		t.Errorf("attrs %v, %d session attachables (want the auth and the secrets providers)", so.FrontendAttrs, len(so.Session))
	}
	if _, err := solveOpt(RunOptions{Options: o, Secrets: []string{"id=idx,src=/nonexistent/file"}}, workerCPU, nil); err == nil || !strings.Contains(err.Error(), "option --secret") {
		t.Errorf("a secret file that does not exist: %v", err)
	}
}

func TestDaemonLost(t *testing.T) {
	lost := status.Error(codes.Unavailable, "error reading from server: EOF")
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{lost, true},
		{fmt.Errorf("solve: %w", lost), true},
		{errors.New("rpc error: code = Unknown desc = failed to push 127.0.0.1:5999/x: dial tcp 127.0.0.1:5999: connect: connection refused"), false},
		{status.Error(codes.Unknown, "process did not complete successfully: exit code: 1"), false},
		{nil, false},
	} {
		if got := daemonLost(tc.err); got != tc.want {
			t.Errorf("daemonLost(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	e := &DaemonLostError{Variant: "worker-cpu", Addr: "unix:///run/buildkit/buildkitd.sock", Err: lost}
	if msg := e.Error(); !strings.Contains(msg, "variant worker-cpu: lost the connection to buildkitd at unix:///run/buildkit/buildkitd.sock") || !errors.Is(e, lost) {
		t.Errorf("%s", msg)
	}
}

// TestPushWatch: a push step still running after the timeout cancels the
// solve with a PushTimeoutError naming the step; one that completes in
// time, or a non-push status, never does.
func TestPushWatch(t *testing.T) {
	at := func(id string, started, completed bool) *client.SolveStatus {
		now := time.Now()
		s := &client.VertexStatus{ID: id}
		if started {
			s.Started = &now
		}
		if completed {
			s.Completed = &now
		}
		return &client.SolveStatus{Statuses: []*client.VertexStatus{s}}
	}
	for _, tc := range []struct {
		name   string
		states []*client.SolveStatus
		fires  string // the step named by the error; "" for no cancel
	}{
		{"stalled", []*client.SolveStatus{at("pushing layers", true, false)}, "pushing layers"},
		{"in time", []*client.SolveStatus{at("pushing layers", true, false), at("pushing layers", true, true)}, ""},
		{"manifest", []*client.SolveStatus{at("pushing layers", true, true), at("pushing manifest for r/x:latest@sha256:00", true, false)}, "pushing manifest for r/x:latest@sha256:00"},
		{"not a push", []*client.SolveStatus{at("exporting layers", true, false)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			p := &pushWatch{timeout: 50 * time.Millisecond, cancel: cancel, variant: "backend-prod", timers: map[string]*time.Timer{}}
			for _, st := range tc.states {
				p.add(st)
			}
			time.Sleep(200 * time.Millisecond)
			p.stop()
			var pto *PushTimeoutError
			got := ""
			if errors.As(context.Cause(ctx), &pto) {
				got = pto.Step
			}
			if got != tc.fires {
				t.Fatalf("cancelled for %q, want %q (cause %v)", got, tc.fires, context.Cause(ctx))
			}
		})
	}
	e := &PushTimeoutError{Variant: "backend-prod", Image: "127.0.0.1:5000/ns/backend-prod:latest", Step: "pushing layers", Timeout: 15 * time.Second}
	for _, want := range []string{"variant backend-prod", "127.0.0.1:5000/ns/backend-prod:latest", "registry 127.0.0.1:5000 ", "15s", "--push-timeout"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q lacks %q", e.Error(), want)
		}
	}
}

// TestDiskFull: ENOSPC in a step's output or in the export becomes a
// DiskFullError naming the daemon, the file and what the lock's wheels
// weigh.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct{ msg, path string }{
		{"failed to solve: failed to compute cache key: write /var/lib/buildkit/runc-overlayfs/snapshots/snapshots/41/fs/app/x.so: no space left on device", "/var/lib/buildkit/runc-overlayfs/snapshots/snapshots/41/fs/app/x.so"},
		{"exit code: 1\n  the step uv pip install torch printed last:\n    OSError: [Errno 28] No space left on device: '/app/.venv/lib/python3.13/site-packages/torch/lib/libtorch_cpu.so'", "/app/.venv/lib/python3.13/site-packages/torch/lib/libtorch_cpu.so"},
		{"No space left on device", ""},
	} {
		m := noSpaceRe.FindStringSubmatch(tc.msg)
		if m == nil || noSpacePath(m) != tc.path {
			t.Errorf("%q: matched %q, want the path %q", tc.msg, m, tc.path)
			continue
		}
		e := &DiskFullError{Variant: "worker-cpu", Addr: "unix:///run/buildkit/buildkitd.sock", Path: noSpacePath(m), WheelBytes: 250e6, Err: errors.New(tc.msg)}
		for _, want := range []string{"variant worker-cpu", "unix:///run/buildkit/buildkitd.sock", "ran out of disk space", "250 MB", "buildctl prune", tc.path} {
			if !strings.Contains(e.Error(), want) {
				t.Errorf("%q lacks %q", e.Error(), want)
			}
		}
	}
	if noSpaceRe.MatchString("no space left in the queue") {
		t.Error("matched a message that is not ENOSPC")
	}
}

var workerCPU, _ = variants.Lookup(variants.WorkerCPU)
