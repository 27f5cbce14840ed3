package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registry reads an image from a registry through containerd's resolver:
// plain HTTP for localhost and 127.0.0.1 (the test registry), HTTPS with the
// given credentials otherwise.
type Registry struct {
	Ref      string
	resolver remotes.Resolver

	// The reference is resolved once; every manifest and blob read after
	// that goes through the same fetcher.
	once    sync.Once
	fetcher remotes.Fetcher
	desc    ocispecs.Descriptor
	err     error
}

func (r *Registry) resolve(ctx context.Context) (remotes.Fetcher, ocispecs.Descriptor, error) {
	r.once.Do(func() {
		name, desc, err := r.resolver.Resolve(ctx, r.Ref)
		if err != nil {
			r.err = fmt.Errorf("resolving %s: %w", r.Ref, err)
			return
		}
		r.desc = desc
		if r.fetcher, err = r.resolver.Fetcher(ctx, name); err != nil {
			r.err = err
		}
	})
	return r.fetcher, r.desc, r.err
}

// NewRegistry returns a Source for ref. creds may be nil (anonymous).
func NewRegistry(ref string, creds func(host string) (string, string, error)) *Registry {
	auth := docker.NewDockerAuthorizer(docker.WithAuthCreds(func(host string) (string, string, error) {
		if creds == nil {
			return "", "", nil
		}
		return creds(host)
	}))
	hosts := docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost), docker.WithAuthorizer(auth))
	return &Registry{Ref: ref, resolver: docker.NewResolver(docker.ResolverOptions{Hosts: hosts})}
}

// Manifest implements Source.
func (r *Registry) Manifest(ctx context.Context, p ocispecs.Platform) (ocispecs.Manifest, digest.Digest, error) {
	f, desc, err := r.resolve(ctx)
	if err != nil {
		return ocispecs.Manifest{}, "", err
	}
	dt, err := fetchAll(ctx, f, desc)
	if err != nil {
		return ocispecs.Manifest{}, "", fmt.Errorf("fetching %s: %w", r.Ref, err)
	}
	top := desc.Digest
	if isIndex(desc.MediaType, dt) {
		var idx ocispecs.Index
		if err := json.Unmarshal(dt, &idx); err != nil {
			return ocispecs.Manifest{}, "", err
		}
		if desc, err = pickManifest(idx, p); err != nil {
			return ocispecs.Manifest{}, "", fmt.Errorf("%s: %w", r.Ref, err)
		}
		if dt, err = fetchAll(ctx, f, desc); err != nil {
			return ocispecs.Manifest{}, "", err
		}
	}
	var m ocispecs.Manifest
	if err := json.Unmarshal(dt, &m); err != nil {
		return ocispecs.Manifest{}, "", fmt.Errorf("%s: manifest: %w", r.Ref, err)
	}
	return m, top, nil
}

// Blob implements Source.
func (r *Registry) Blob(ctx context.Context, d ocispecs.Descriptor) (io.ReadCloser, error) {
	f, _, err := r.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return f.Fetch(ctx, d)
}

func fetchAll(ctx context.Context, f remotes.Fetcher, d ocispecs.Descriptor) ([]byte, error) {
	rc, err := f.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 16<<20))
}
