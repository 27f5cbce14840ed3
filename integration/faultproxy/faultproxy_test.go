package faultproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRegistry answers blob puts and manifest puts with 201 and HEADs of
// the blobs it holds with 200.
func fakeRegistry(t *testing.T, blobs ...string) string {
	t.Helper()
	var mu sync.Mutex
	have := map[string]bool{}
	for _, b := range blobs {
		have[b] = true
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodHead:
			if have[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]] {
				return
			}
			w.WriteHeader(http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         Kind
	}{
		{"PUT", "/v2/ns/app/blobs/uploads/1234?digest=sha256:00", BlobPut},
		{"POST", "/v2/ns/app/blobs/uploads/", BlobStart},
		{"PUT", "/v2/ns/app/manifests/latest", ManifestPut},
		{"HEAD", "/v2/ns/app/blobs/sha256:00", Other},
		{"PATCH", "/v2/ns/app/blobs/uploads/1234", Other},
	} {
		r := httptestRequest(tc.method, tc.path)
		if got := KindOf(r); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

func httptestRequest(method, path string) *http.Request {
	return httptest.NewRequest(method, "http://127.0.0.1"+path, nil)
}

// TestFaults: each fault does what it says, on the requests it selects.
func TestFaults(t *testing.T) {
	up := fakeRegistry(t)
	p, err := New(up, Options{Rules: []Rule{
		{Kind: BlobPut, Every: 2, Times: 2, Status: 500},
		{Kind: BlobStart, Reset: true, Times: 1},
		{Kind: ManifestPut, Skip: 1, Stall: 200 * time.Millisecond, Times: 1},
		{Kind: ManifestPut, Skip: 2, Stall: Forever},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := &http.Client{Timeout: 2 * time.Second}
	base := "http://" + p.Host + "/v2/ns/app/"

	var got []int
	for range 6 {
		code, err := do(t, c, "PUT", base+"blobs/uploads/1?digest=sha256:aa", "bytes")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, code)
	}
	if want := []int{201, 500, 201, 500, 201, 201}; !equal(got, want) {
		t.Errorf("blob puts answered %v, want %v (500 every 2nd, twice)", got, want)
	}

	if _, err := do(t, c, "POST", base+"blobs/uploads/", ""); err == nil {
		t.Error("the first upload start was not reset")
	}
	if code, err := do(t, c, "POST", base+"blobs/uploads/", ""); err != nil || code != 201 {
		t.Errorf("the second upload start: %d, %v", code, err)
	}

	start := time.Now()
	if code, err := do(t, c, "PUT", base+"manifests/a", "{}"); err != nil || code != 201 || time.Since(start) > 150*time.Millisecond {
		t.Errorf("the first manifest put: %d, %v after %s (no stall expected)", code, err, time.Since(start))
	}
	start = time.Now()
	if code, err := do(t, c, "PUT", base+"manifests/b", "{}"); err != nil || code != 201 || time.Since(start) < 200*time.Millisecond {
		t.Errorf("the second manifest put: %d, %v after %s (a 200ms stall expected)", code, err, time.Since(start))
	}
	short := &http.Client{Timeout: 300 * time.Millisecond}
	if _, err := do(t, short, "PUT", base+"manifests/c", "{}"); err == nil {
		t.Error("the third manifest put was answered; it should stall until the client gives up")
	}

	st := p.Stats()
	if want := []int{2, 1, 1, 1}; !equal(st.Faults, want) {
		t.Errorf("faults %v, want %v", st.Faults, want)
	}
	if st.Resent != 5 { // the same blob put six times; manifests a, b and c differ
		t.Errorf("resent %d, want 5", st.Resent)
	}
	if st.Requests[BlobPut] != 6 || st.Requests[BlobStart] != 2 || st.Requests[ManifestPut] != 3 {
		t.Errorf("requests %v", st.Requests)
	}
	if len(st.Manifests) != 2 {
		t.Errorf("accepted manifests %v, want a and b", st.Manifests)
	}
}

// TestManifestOrder: a manifest naming a blob the registry lacks is a
// violation; one whose content is there is not.
func TestManifestOrder(t *testing.T) {
	up := fakeRegistry(t, "sha256:c0", "sha256:l1")
	p, err := New(up, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	base := "http://" + p.Host + "/v2/ns/app/manifests/"
	good := `{"config":{"digest":"sha256:c0"},"layers":[{"digest":"sha256:l1"}]}`
	bad := `{"config":{"digest":"sha256:c0"},"layers":[{"digest":"sha256:l1"},{"digest":"sha256:l2"}]}`
	index := `{"manifests":[{"digest":"sha256:m9"}]}`
	for _, b := range []string{good, bad, index} {
		if _, err := do(t, http.DefaultClient, "PUT", base+"latest", b); err != nil {
			t.Fatal(err)
		}
	}
	v := p.Stats().Violations
	if len(v) != 2 || !strings.Contains(v[0], "blobs/sha256:l2") || !strings.Contains(v[1], "manifests/sha256:m9") {
		t.Errorf("violations %q, want the missing layer l2 and child manifest m9", v)
	}
}

func TestBadRule(t *testing.T) {
	if _, err := New("127.0.0.1:1", Options{Rules: []Rule{{Kind: BlobPut, Status: 500, Reset: true}}}); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("a rule with two faults: %v", err)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNoMounts: a mount request reaches the registry as a plain upload
// start.
func TestNoMounts(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RawQuery
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	p, err := New(strings.TrimPrefix(srv.URL, "http://"), Options{NoMounts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := do(t, http.DefaultClient, "POST", "http://"+p.Host+"/v2/ns/app/blobs/uploads/?mount=sha256:aa&from=other/app", ""); err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Errorf("the registry saw the query %q, want none", got)
	}
}
