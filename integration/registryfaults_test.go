package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/faultproxy"
	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/moby/buildkit/client"
)

// retriesLogged counts the retries BuildKit's pusher announces in a
// rawjson progress log ("retrying in 1s" in the export's logs).
func retriesLogged(t *testing.T, path string) int {
	t.Helper()
	n := 0
	eachStatus(t, path, func(st *client.SolveStatus) {
		for _, l := range st.Logs {
			n += strings.Count(string(l.Data), "retrying in ")
		}
	})
	return n
}

// TestRegistryFaults pushes backend-prod (built and cached once) through
// a fault proxy in front of the world's registry, one fault per case.
// Transient faults are retried by BuildKit's pusher and the push gives
// the digest an undisturbed push gives; persistent ones fail naming the
// registry, the image and the status (or the push timeout). In every
// case no manifest reaches the registry before the blobs it names, no
// tag pushed before moves, and a tag a failed push names is absent.
func TestRegistryFaults(t *testing.T) {
	w := world.ForTest(t)
	a, want := undisturbedProd(t, w, "itest-regfault")

	const bound = 45 * time.Second // from the push's start to the error
	for _, tc := range []struct {
		name    string
		rule    faultproxy.Rule
		timeout time.Duration
		// fails lists what the error must name; nil: the push succeeds.
		fails []string
	}{
		{name: "500s", rule: faultproxy.Rule{Kind: faultproxy.BlobPut, Every: 3, Times: 4, Status: 500}},
		{name: "resets", rule: faultproxy.Rule{Kind: faultproxy.BlobPut, Every: 4, Times: 3, Reset: true}},
		{name: "stall", rule: faultproxy.Rule{Kind: faultproxy.BlobPut, Skip: 2, Times: 1, Stall: 10 * time.Second}},
		{name: "stall-past-timeout", rule: faultproxy.Rule{Kind: faultproxy.BlobPut, Skip: 2, Stall: faultproxy.Forever},
			timeout: 20 * time.Second, fails: []string{"--push-timeout", "20s"}},
		{name: "500-persistent", rule: faultproxy.Rule{Kind: faultproxy.BlobPut, Status: 500}, fails: []string{"500 Internal Server Error to PUT", "retried", "no manifest of this image was pushed"}},
		{name: "401-manifest", rule: faultproxy.Rule{Kind: faultproxy.ManifestPut, Status: 401}, fails: []string{"unauthorized (HTTP 401)", "docker login"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Mounts refused: every blob's bytes go through the faults.
			p, err := faultproxy.New(w.Registry, faultproxy.Options{Rules: []faultproxy.Rule{tc.rule}, NoMounts: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// A namespace of its own each run: a repository that has the
			// image already would be skipped by the pusher, faults unseen.
			ns := fmt.Sprintf("itest-regfault-%s-%d", tc.name, time.Now().Unix())
			before := registryTags(t, w)
			da := a
			da.opts = offline(w, ns)
			da.opts.Set("source-date-epoch", epoch)
			da.opts.Registry = p.Host + "/" + ns
			da.pushTimeout = tc.timeout
			var once sync.Once
			var pushStart time.Time
			logPath := filepath.Join(t.TempDir(), "progress.json")
			start := time.Now()
			rep, err := buildWatched(t, w, da, logPath, func(st *client.SolveStatus) {
				for _, s := range st.Statuses {
					if s.ID == "pushing layers" && s.Started != nil {
						once.Do(func() { pushStart = time.Now() })
					}
				}
			})
			took := time.Since(start)
			st := p.Stats()
			retries := retriesLogged(t, logPath)
			t.Logf("%s: %s; build %s, push start to end %s; faults injected %v, puts sent again %d (BuildKit logged %d retries), requests %v",
				tc.name, tc.rule, took.Round(time.Millisecond), time.Since(pushStart).Round(time.Millisecond), st.Faults, st.Resent, retries, st.Requests)
			if pushStart.IsZero() {
				t.Fatalf("the push never started: %v", err)
			}
			if len(st.Violations) > 0 {
				t.Errorf("manifests put before their content: %v", st.Violations)
			}
			after := registryTags(t, w)
			tagsUnmoved(t, before, after)
			var ours []string
			for k := range after {
				if strings.HasPrefix(k, ns+"/") {
					ours = append(ours, k)
				}
			}
			if tc.fails == nil {
				if err != nil {
					t.Fatalf("a transient fault failed the push: %v", err)
				}
				if st.Faults[0] == 0 {
					t.Fatal("no fault was injected: the case tests nothing")
				}
				if got := rep.Images[0].Digest; got != want {
					t.Errorf("pushed %s through the faults, undisturbed %s", got, want)
				}
				if len(ours) != 1 {
					t.Errorf("tags of %s after the push: %v, want one", ns, ours)
				}
				for _, k := range ours {
					if err := complete(t, w.Registry+"/"+k); err != nil {
						t.Errorf("tag %s is not a complete image: %v", k, err)
					}
				}
				// Each faulted put is sent again: by BuildKit's retry
				// handler (which logs it) or by containerd's HTTP client
				// below it (which does not).
				if tc.rule.Status != 0 || tc.rule.Reset {
					if st.Resent < st.Faults[0] {
						t.Errorf("%d faults injected but %d puts sent again", st.Faults[0], st.Resent)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("the push succeeded through a persistent fault (%s)", tc.rule)
			}
			t.Logf("the error:\n%v", err)
			for _, s := range append([]string{p.Host, ns + "/ktrdr-backend", "backend-prod"}, tc.fails...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not name %q", s)
				}
			}
			if tc.timeout > 0 {
				var pto *build.PushTimeoutError
				if !errors.As(err, &pto) {
					t.Errorf("not a push timeout: %v", err)
				}
			}
			if d := time.Since(pushStart); d > bound {
				t.Errorf("the push failed %s after it started (bound %s)", d, bound)
			}
			if len(ours) > 0 {
				t.Errorf("a failed push left tags %v", ours)
			}
			if len(st.Manifests) > 0 && tc.rule.Kind != faultproxy.ManifestPut {
				t.Errorf("manifests reached the registry although blobs failed: %v", st.Manifests)
			}
		})
	}
}
