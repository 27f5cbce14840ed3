// Package faultproxy is a reverse proxy in front of an OCI registry that
// injects the faults real registries show: 5xx answers, reset
// connections, stalls, refused manifest puts. The fault drills
// (integration/registryfaults_test.go) push through it to measure what
// BuildKit's pusher retries, what fails and with which error, and what is
// left in the registry.
//
// It also checks the order a correct pusher keeps: every manifest it
// forwards is checked against the registry behind it first, and a manifest
// that names a blob (or child manifest) the registry lacks is recorded as
// a violation, whatever the registry then answers.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kind is the kind of a registry request, as the rules select them.
type Kind string

const (
	// BlobPut completes a blob upload (PUT .../blobs/uploads/...?digest=),
	// carrying the blob's bytes when the pusher uploads in one request, as
	// containerd's does.
	BlobPut Kind = "blob-put"
	// BlobStart starts a blob upload or mounts one (POST .../blobs/uploads/).
	BlobStart Kind = "blob-start"
	// ManifestPut is PUT .../manifests/REF.
	ManifestPut Kind = "manifest-put"
	// Other is everything else (HEAD and GET of blobs and manifests, /v2/).
	Other Kind = "other"
)

// KindOf says which kind a request is.
func KindOf(r *http.Request) Kind {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPut && strings.Contains(p, "/blobs/uploads/"):
		return BlobPut
	case r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(p, "/"), "/blobs/uploads"):
		return BlobStart
	case r.Method == http.MethodPut && strings.Contains(p, "/manifests/"):
		return ManifestPut
	}
	return Other
}

// Rule injects one fault into requests of one kind.
type Rule struct {
	Kind Kind
	// Every N-th request of the kind is faulted (1, or 0: each one);
	// Skip requests of the kind pass before counting starts. Each rule
	// counts every request of its kind, faulted by another rule or not.
	Every, Skip int
	// Times bounds the faults injected (0: no bound).
	Times int
	// Exactly one of Status, Reset and Stall says what the fault is:
	// answer with this HTTP status (the request body read first, as a
	// registry does); reset the connection (TCP RST, no answer); or hold
	// the request this long before passing it on (Forever: until the
	// client gives up or the proxy closes).
	Status int
	Reset  bool
	Stall  time.Duration
}

// Forever is a Stall that never ends by itself.
const Forever = time.Duration(-1)

func (r Rule) String() string {
	what := ""
	switch {
	case r.Status != 0:
		what = fmt.Sprintf("status %d", r.Status)
	case r.Reset:
		what = "connection reset"
	case r.Stall == Forever:
		what = "stall until the client gives up"
	default:
		what = "stall " + r.Stall.String()
	}
	return fmt.Sprintf("%s on %s (every %d, skip %d, at most %d)", what, r.Kind, max(r.Every, 1), r.Skip, r.Times)
}

// Proxy is a running fault proxy.
type Proxy struct {
	// Host is the proxy's address, 127.0.0.1:PORT: use it as the registry
	// host in image names (buildkitd talks plain HTTP to 127.0.0.1).
	Host string

	upstream *url.URL
	srv      *http.Server
	closed   chan struct{}

	mu         sync.Mutex
	rules      []Rule
	seen       map[int]int // per rule: matching requests seen
	faulted    map[int]int // per rule: faults injected
	requests   map[Kind]int
	keys       map[string]bool // blob and manifest puts seen, by repository and digest or reference
	resent     int
	violations []string
	manifests  []string // manifests forwarded and accepted: "repo@ref"
}

// Options configure a proxy.
type Options struct {
	// Rules are tried in order; the first that faults a request wins.
	Rules []Rule
	// NoMounts turns cross-repository mounts (POST ...?mount=D&from=R)
	// into plain upload starts, as registries without mount support
	// answer them, so every blob's bytes go through the proxy even when
	// the registry behind it has them in another repository.
	NoMounts bool
}

// New starts a proxy to the registry at upstream (host:port).
func New(upstream string, o Options) (*Proxy, error) {
	rules := o.Rules
	target, err := url.Parse("http://" + upstream)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: registry address %s: %w", upstream, err)
	}
	for _, r := range rules {
		n := 0
		if r.Status != 0 {
			n++
		}
		if r.Reset {
			n++
		}
		if r.Stall != 0 {
			n++
		}
		if n != 1 {
			return nil, fmt.Errorf("fault proxy: rule %+v: exactly one of Status, Reset and Stall must be set", r)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	p := &Proxy{
		Host: ln.Addr().String(), upstream: target, closed: make(chan struct{}), rules: rules,
		seen: map[int]int{}, faulted: map[int]int{}, requests: map[Kind]int{}, keys: map[string]bool{},
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The registry builds upload locations from Host: keep ours.
			r.Out.Host = r.In.Host
			if o.NoMounts && KindOf(r.In) == BlobStart {
				q := r.Out.URL.Query()
				q.Del("mount")
				q.Del("from")
				r.Out.URL.RawQuery = q.Encode()
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if KindOf(resp.Request) == ManifestPut && resp.StatusCode == http.StatusCreated {
				p.mu.Lock()
				p.manifests = append(p.manifests, manifestName(resp.Request.URL.Path))
				p.mu.Unlock()
			}
			return nil
		},
		FlushInterval: -1,
		// A client that gives up mid-request is what the drills cause.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rule, ok := p.pick(r); ok {
			if done := p.inject(w, r, rule); done {
				return
			}
		}
		if KindOf(r) == ManifestPut {
			p.checkManifest(r)
		}
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	return p, nil
}

// pick counts the request and returns the rule that faults it, if any.
func (p *Proxy) pick(r *http.Request) (Rule, bool) {
	k := KindOf(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[k]++
	if key := putKey(r); key != "" {
		if p.keys[key] {
			p.resent++
		}
		p.keys[key] = true
	}
	for i, rule := range p.rules {
		if rule.Kind == k {
			p.seen[i]++
		}
	}
	for i, rule := range p.rules {
		if rule.Kind != k {
			continue
		}
		n := p.seen[i] - rule.Skip
		if n <= 0 || n%max(rule.Every, 1) != 0 || (rule.Times > 0 && p.faulted[i] >= rule.Times) {
			continue
		}
		p.faulted[i]++
		return rule, true
	}
	return Rule{}, false
}

// inject applies a fault; false means the request goes on to the
// registry afterwards (a stall that ended).
func (p *Proxy) inject(w http.ResponseWriter, r *http.Request, rule Rule) bool {
	switch {
	case rule.Status != 0:
		// Answered as the distribution registry answers: its error
		// codes, nothing that names the proxy or repeats the status.
		io.Copy(io.Discard, r.Body)
		code, msg := "UNKNOWN", "unknown error"
		switch rule.Status {
		case http.StatusUnauthorized:
			code, msg = "UNAUTHORIZED", "authentication required"
			w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
		case http.StatusForbidden:
			code, msg = "DENIED", "requested access to the resource is denied"
		case http.StatusTooManyRequests:
			code, msg = "TOOMANYREQUESTS", "too many requests"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rule.Status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
		return true
	case rule.Reset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "fault proxy: cannot reset this connection", http.StatusBadGateway)
			return true
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return true
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close sends RST, not FIN
		}
		conn.Close()
		return true
	default:
		var stall <-chan time.Time
		if rule.Stall != Forever {
			stall = time.After(rule.Stall)
		}
		select {
		case <-stall:
			return false
		case <-r.Context().Done():
		case <-p.closed:
		}
		return true
	}
}

// checkManifest records a violation when the manifest being put names
// content the registry does not have yet.
func (p *Proxy) checkManifest(r *http.Request) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return
	}
	repo := manifestName(r.URL.Path)
	repo = repo[:strings.LastIndexByte(repo, '@')]
	var m struct {
		Config    *struct{ Digest string }
		Layers    []struct{ Digest string }
		Manifests []struct{ Digest string }
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return
	}
	var need []string
	if m.Config != nil {
		need = append(need, "blobs/"+m.Config.Digest)
	}
	for _, l := range m.Layers {
		need = append(need, "blobs/"+l.Digest)
	}
	for _, c := range m.Manifests {
		need = append(need, "manifests/"+c.Digest)
	}
	for _, n := range need {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodHead, p.upstream.String()+"/v2/"+repo+"/"+n, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			p.mu.Lock()
			p.violations = append(p.violations, fmt.Sprintf("%s put before its %s", r.URL.Path, n))
			p.mu.Unlock()
		}
	}
}

// putKey names what a blob or manifest put stores, so that a second put
// of it is seen as the client sending it again; "" for other requests.
func putKey(r *http.Request) string {
	switch KindOf(r) {
	case BlobPut:
		repo, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/uploads/")
		return "blob " + repo + "@" + r.URL.Query().Get("digest")
	case ManifestPut:
		return "manifest " + manifestName(r.URL.Path)
	}
	return ""
}

// manifestName turns /v2/REPO/manifests/REF into REPO@REF.
func manifestName(path string) string {
	path = strings.TrimPrefix(path, "/v2/")
	repo, ref, _ := strings.Cut(path, "/manifests/")
	return repo + "@" + ref
}

// Stats is what the proxy saw.
type Stats struct {
	// Requests per kind; Faults injected per rule, in the rules' order.
	Requests map[Kind]int
	Faults   []int
	// Resent counts blob and manifest puts of something already put
	// once: the client's retries, whoever made them.
	Resent int
	// Violations are manifests put before the content they name.
	Violations []string
	// Manifests the registry accepted through the proxy, as REPO@REF.
	Manifests []string
}

// Stats returns what the proxy saw so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Requests: map[Kind]int{}, Resent: p.resent, Violations: append([]string(nil), p.violations...), Manifests: append([]string(nil), p.manifests...)}
	for k, n := range p.requests {
		s.Requests[k] = n
	}
	for i := range p.rules {
		s.Faults = append(s.Faults, p.faulted[i])
	}
	return s
}

// Close stops the proxy, ending any stall.
func (p *Proxy) Close() error {
	close(p.closed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	return p.srv.Close()
}
