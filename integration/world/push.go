package world

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// registryClient speaks just enough of the distribution API to push and
// check images on the world's plain-HTTP registry.
type registryClient struct {
	host string // 127.0.0.1:5000
	http *http.Client
}

func newRegistryClient(host string) *registryClient {
	return &registryClient{host: host, http: &http.Client{}}
}

func (r *registryClient) url(format string, args ...any) string {
	return "http://" + r.host + fmt.Sprintf(format, args...)
}

// manifestDigest returns the digest the registry serves for repo:tag, or ""
// when it has none.
func (r *registryClient) manifestDigest(ctx context.Context, repo, tag string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, r.url("/v2/%s/manifests/%s", repo, tag), nil)
	req.Header.Set("Accept", ocispecs.MediaTypeImageManifest+", "+ocispecs.MediaTypeImageIndex)
	resp, err := r.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("registry %s: %w", r.host, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Header.Get("Docker-Content-Digest"), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", fmt.Errorf("registry %s: HEAD %s:%s: %s", r.host, repo, tag, resp.Status)
}

// manifest fetches a manifest by tag or digest.
func (r *registryClient) manifest(ctx context.Context, repo, ref string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url("/v2/%s/manifests/%s", repo, ref), nil)
	req.Header.Set("Accept", ocispecs.MediaTypeImageManifest+", "+ocispecs.MediaTypeImageIndex)
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", r.host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("registry %s: GET %s:%s: %s", r.host, repo, ref, resp.Status)
	}
	return b, nil
}

func (r *registryClient) blobExists(ctx context.Context, repo, dgst string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, r.url("/v2/%s/blobs/%s", repo, dgst), nil)
	resp, err := r.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("registry %s: %w", r.host, err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// pushBlob uploads a blob (from a file or bytes) unless the repository has
// it; mountFrom names repositories that may hold it already, so a shared
// layer is linked rather than sent again.
func (r *registryClient) pushBlob(ctx context.Context, repo, dgst string, size int64, open func() (io.ReadCloser, error), mountFrom ...string) error {
	if ok, err := r.blobExists(ctx, repo, dgst); err != nil || ok {
		return err
	}
	for _, from := range mountFrom {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, url.QueryEscape(dgst), url.QueryEscape(from)), nil)
		resp, err := r.http.Do(req)
		if err != nil {
			return fmt.Errorf("registry %s: %w", r.host, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return nil
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/v2/%s/blobs/uploads/", repo), nil)
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("registry %s: %w", r.host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("registry %s: starting upload to %s: %s", r.host, repo, resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("registry %s: upload location: %w", r.host, err)
	}
	if !loc.IsAbs() {
		loc = (&url.URL{Scheme: "http", Host: r.host}).ResolveReference(loc)
	}
	q := loc.Query()
	q.Set("digest", dgst)
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return err
	}
	defer body.Close()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = r.http.Do(req)
	if err != nil {
		return fmt.Errorf("registry %s: uploading %s: %w", r.host, dgst, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("registry %s: uploading %s to %s: %s %s", r.host, dgst, repo, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (r *registryClient) pushBytes(ctx context.Context, repo, dgst string, b []byte) error {
	return r.pushBlob(ctx, repo, dgst, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

func (r *registryClient) pushFile(ctx context.Context, repo, dgst string, size int64, path string, mountFrom ...string) error {
	return r.pushBlob(ctx, repo, dgst, size, func() (io.ReadCloser, error) { return os.Open(path) }, mountFrom...)
}

// putManifest stores a manifest under a tag and returns the digest the
// registry computed.
func (r *registryClient) putManifest(ctx context.Context, repo, tag, mediaType string, b []byte) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, r.url("/v2/%s/manifests/%s", repo, tag), bytes.NewReader(b))
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("registry %s: %w", r.host, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("registry %s: putting manifest %s:%s: %s %s", r.host, repo, tag, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}
