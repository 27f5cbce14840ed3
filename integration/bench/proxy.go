package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// PushCounter is a reverse proxy in front of the registry that counts the
// bytes clients upload (request bodies of blob uploads and manifest puts)
// and the cross-repository mounts the registry accepts. Both ways push
// through it, so "bytes pushed" is measured on the wire, not computed.
// buildkitd talks plain HTTP to it, as to any 127.0.0.1 registry.
type PushCounter struct {
	// Host is the proxy's address, 127.0.0.1:PORT: use it as the registry
	// host in image names.
	Host string

	uploaded, mounts, blobs atomic.Int64
	mu                      sync.Mutex
	digests                 []string
	srv                     *http.Server
	ln                      net.Listener
}

// NewPushCounter starts a counting proxy to the registry at upstream
// (host:port).
func NewPushCounter(upstream string) (*PushCounter, error) {
	target, err := url.Parse("http://" + upstream)
	if err != nil {
		return nil, fmt.Errorf("registry address %s: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("push counter: %w", err)
	}
	p := &PushCounter{Host: ln.Addr().String(), ln: ln}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The registry builds upload locations from Host: keep ours.
			r.Out.Host = r.In.Host
			switch r.In.Method {
			case http.MethodPut, http.MethodPatch, http.MethodPost:
				if r.In.Body != nil && r.In.Body != http.NoBody {
					r.Out.Body = &countingBody{ReadCloser: r.In.Body, n: &p.uploaded}
				}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			req := resp.Request
			if req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated {
				p.mounts.Add(1)
			}
			if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated {
				p.blobs.Add(1)
				p.mu.Lock()
				p.digests = append(p.digests, req.URL.Query().Get("digest"))
				p.mu.Unlock()
			}
			return nil
		},
		FlushInterval: -1,
	}
	p.srv = &http.Server{Handler: rp}
	go p.srv.Serve(ln)
	return p, nil
}

// PushStats are the counters since the last Reset.
type PushStats struct {
	// Bytes uploaded (blobs, manifests); Blobs completed uploads; Mounts
	// blobs mounted from another repository instead of uploaded.
	Bytes, Blobs, Mounts int64
	// Digests are the uploaded blobs' digests, in order (one per upload:
	// a blob pushed to two repositories is there twice).
	Digests []string
}

// Reset zeroes the counters and returns what they held.
func (p *PushCounter) Reset() PushStats {
	p.mu.Lock()
	ds := p.digests
	p.digests = nil
	p.mu.Unlock()
	return PushStats{Bytes: p.uploaded.Swap(0), Blobs: p.blobs.Swap(0), Mounts: p.mounts.Swap(0), Digests: ds}
}

// Close stops the proxy.
func (p *PushCounter) Close() error { return p.srv.Close() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}
