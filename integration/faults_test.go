package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// The fault drills: what a user sees, and what state is left, when the
// daemon dies under a build and when two pipelines race on the same tags.

// registryTags maps every repository:tag in the world's registry to the
// digest its manifest has.
func registryTags(t *testing.T, w *world.World) map[string]string {
	t.Helper()
	get := func(path string, v any) {
		resp, err := http.Get("http://" + w.Registry + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	// The catalog, page by page (the registry serves at most 1000 a page).
	var repos []string
	for last := ""; ; {
		var cat struct{ Repositories []string }
		get("/v2/_catalog?n=1000&last="+last, &cat)
		repos = append(repos, cat.Repositories...)
		if len(cat.Repositories) < 1000 {
			break
		}
		last = cat.Repositories[len(cat.Repositories)-1]
	}
	out := map[string]string{}
	for _, repo := range repos {
		var tl struct{ Tags []string }
		get("/v2/"+repo+"/tags/list", &tl)
		for _, tag := range tl.Tags {
			req, _ := http.NewRequest(http.MethodHead, "http://"+w.Registry+"/v2/"+repo+"/manifests/"+tag, nil)
			req.Header.Set("Accept", strings.Join([]string{ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
				"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"}, ", "))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				out[repo+":"+tag] = resp.Header.Get("Docker-Content-Digest")
			}
		}
	}
	return out
}

// complete checks that every blob ref's manifest names is in the registry.
func complete(t *testing.T, ref string) error {
	t.Helper()
	ctx := context.Background()
	reg := inspect.NewRegistry(ref, nil)
	m, _, err := reg.Manifest(ctx, amd64)
	if err != nil {
		return err
	}
	for _, d := range append([]ocispecs.Descriptor{m.Config}, m.Layers...) {
		rc, err := reg.Blob(ctx, d)
		if err != nil {
			return fmt.Errorf("%s: blob %s: %w", ref, d.Digest, err)
		}
		rc.Close()
	}
	return nil
}

// vertexRun is one vertex as a rawjson progress log reports it.
type vertexRun struct {
	Name               string
	Started, Completed *time.Time
	Cached             bool
}

// eachStatus calls fn on every solve status of a rawjson progress log,
// in order.
func eachStatus(t *testing.T, path string, fn func(*client.SolveStatus)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var st client.SolveStatus
		if err := dec.Decode(&st); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fn(&st)
	}
}

// readRawJSON reads a rawjson progress log: the last state of each vertex.
func readRawJSON(t *testing.T, path string) map[string]vertexRun {
	t.Helper()
	out := map[string]vertexRun{}
	eachStatus(t, path, func(st *client.SolveStatus) {
		for _, v := range st.Vertexes {
			r := out[v.Digest.String()]
			if v.Name != "" {
				r.Name = v.Name
			}
			if v.Started != nil {
				r.Started = v.Started
			}
			if v.Completed != nil {
				r.Completed = v.Completed
			}
			r.Cached = r.Cached || v.Cached
			out[v.Digest.String()] = r
		}
	})
	return out
}

// tagsUnmoved fails t for every tag of before that after gives another
// digest (or none).
func tagsUnmoved(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, d := range before {
		if after[k] != d {
			t.Errorf("tag %s moved from %s to %s", k, d, after[k])
		}
	}
}

// buildWatched runs one build with rawjson progress into logPath and
// calls watch on every vertex state it reports while it runs.
func buildWatched(t *testing.T, w *world.World, a buildArgs, logPath string, watch func(*client.SolveStatus)) (*build.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := w.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pr, pw := io.Pipe()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		dec := json.NewDecoder(io.TeeReader(pr, logf))
		for {
			var st client.SolveStatus
			if err := dec.Decode(&st); err != nil {
				io.Copy(io.Discard, pr)
				return
			}
			if watch != nil {
				watch(&st)
			}
		}
	}()
	rep, err := build.Run(ctx, c, build.RunOptions{
		ContextDir: a.dir, Variants: a.variants, Options: a.opts,
		Probe: a.probe, Push: a.push, Inspect: a.push, NoCache: a.noCache,
		Progress: "rawjson", ProgressOut: nopFile{pw}, Addr: w.BuildkitAddr, PushTimeout: a.pushTimeout,
	})
	pw.Close()
	<-done
	return rep, err
}

// nopFile is a writer as a console.File (the printer never reads it).
type nopFile struct{ io.Writer }

func (nopFile) Read([]byte) (int, error) { return 0, io.EOF }
func (nopFile) Close() error             { return nil }
func (nopFile) Fd() uintptr              { return ^uintptr(0) }
func (nopFile) Name() string             { return "progress" }

// undisturbedProd builds and pushes backend-prod with SOURCE_DATE_EPOCH
// under namespace ns: the build a drill repeats under its fault, and the
// digest it must give once the fault is gone.
func undisturbedProd(t *testing.T, w *world.World, ns string) (buildArgs, string) {
	t.Helper()
	o := offline(w, ns)
	if err := o.Set("source-date-epoch", epoch); err != nil {
		t.Fatal(err)
	}
	a := buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o, push: true}
	rep, err := runBuild(t, w, a)
	if err != nil {
		t.Fatal(err)
	}
	return a, rep.Images[0].Digest
}

// TestDaemonKilled: buildkitd SIGKILLed while backend-prod's largest
// install step (pandas, 13 MB of wheel) runs, and again while its export
// pushes. The build fails
// within a bounded time naming the daemon's address and the lost
// connection; no tag in the registry moved, and the name being pushed (a
// namespace no run used before) was not created; after buildkitd is
// restarted the same command
// succeeds with the digest it gives undisturbed (SOURCE_DATE_EPOCH).
func TestDaemonKilled(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	a, want := undisturbedProd(t, w, "itest-kill")
	defer func() {
		// Whatever happened, leave the world's daemon running.
		if err := w.RestartBuildkitd(ctx); err != nil {
			t.Errorf("restarting buildkitd: %v", err)
		}
	}()

	const bound = 60 * time.Second
	for _, drill := range []struct {
		name, ns string
		at       func(*client.SolveStatus) string
	}{
		{"install", "itest-kill-install", func(st *client.SolveStatus) string {
			for _, v := range st.Vertexes {
				if v.Started != nil && v.Completed == nil && strings.Contains(v.Name, "uv pip install pandas") {
					return v.Name
				}
			}
			return ""
		}},
		// The export's progress: "pushing layers", then one status per
		// blob; killed once a blob is on its way.
		{"export", "itest-kill-export", func(st *client.SolveStatus) string {
			for _, s := range st.Statuses {
				if s.Started != nil && s.Completed == nil && strings.HasPrefix(s.ID, "pushing") {
					return s.ID
				}
			}
			return ""
		}},
	} {
		t.Run(drill.name, func(t *testing.T) {
			before := registryTags(t, w)
			da := a
			// A namespace no earlier run made: its absence after the
			// kill is what the registry must show.
			ns := fmt.Sprintf("%s-%d", drill.ns, time.Now().UnixNano())
			da.opts = offline(w, ns)
			da.opts.Set("source-date-epoch", epoch)
			da.noCache = true
			var once sync.Once
			var killed time.Time
			var killErr error
			logPath := filepath.Join(t.TempDir(), "progress.json")
			_, err := buildWatched(t, w, da, logPath, func(st *client.SolveStatus) {
				if at := drill.at(st); at != "" {
					once.Do(func() {
						killed = time.Now()
						killErr = w.KillBuildkitd()
						t.Logf("killed buildkitd at %q", at)
					})
				}
			})
			if killed.IsZero() {
				t.Fatalf("the build never reached the %s step (err %v)", drill.name, err)
			}
			if killErr != nil {
				t.Fatal(killErr)
			}
			took := time.Since(killed)
			t.Logf("error %s after the kill:\n%v", took.Round(time.Millisecond), err)
			var lost *build.DaemonLostError
			if !errors.As(err, &lost) || !strings.Contains(err.Error(), w.BuildkitAddr) {
				t.Errorf("the error is not a lost connection naming %s: %v", w.BuildkitAddr, err)
			}
			if took > bound {
				t.Errorf("the build took %s to fail after the kill (bound %s)", took, bound)
			}
			after := registryTags(t, w)
			tagsUnmoved(t, before, after)
			var added []string
			for k := range after {
				if _, ok := before[k]; !ok {
					added = append(added, k)
				}
			}
			sort.Strings(added)
			for _, k := range added {
				if strings.HasPrefix(k, ns+"/") {
					t.Errorf("the killed build created %s", k)
				} else if err := complete(t, w.Registry+"/"+k); err != nil {
					t.Errorf("a new tag %s is not a complete image: %v", k, err)
				}
			}
			if err := w.RestartBuildkitd(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := runBuild(t, w, da)
			if err != nil {
				t.Fatalf("the same command after the restart: %v", err)
			}
			// The check above can fail: the same name exists once pushed.
			if _, ok := registryTags(t, w)[strings.TrimPrefix(rep.Images[0].Ref, w.Registry+"/")]; !ok {
				t.Errorf("after the restart the build reports %s, which the registry does not list", rep.Images[0].Ref)
			}
			if got := rep.Images[0].Digest; got != want {
				t.Errorf("after the restart backend-prod is %s, undisturbed it is %s", got, want)
			}
			t.Logf("after the restart: %s, as undisturbed; new tags left by the killed build: %v", rep.Images[0].Digest, added)
		})
	}
}
