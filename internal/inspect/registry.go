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
	// The platform's manifest digest, not the index's: a multi-platform
	// report row names the index separately.
	return m, desc.Digest, nil
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

// Top is what a reference names in the registry: its descriptor and the
// raw manifest or index.
func (r *Registry) Top(ctx context.Context) (ocispecs.Descriptor, []byte, error) {
	f, desc, err := r.resolve(ctx)
	if err != nil {
		return ocispecs.Descriptor{}, nil, err
	}
	dt, err := fetchAll(ctx, f, desc)
	if err != nil {
		return ocispecs.Descriptor{}, nil, fmt.Errorf("fetching %s: %w", r.Ref, err)
	}
	return desc, dt, nil
}

// Statement is one in-toto statement of an image's attestation manifest.
type Statement struct {
	// PredicateType is the layer's in-toto.io/predicate-type annotation.
	PredicateType string
	// Raw is the statement as stored.
	Raw []byte
}

// Attestations returns the in-toto statements BuildKit attached to the
// image of platform p (its attestation manifest's layers), and the
// digest of the image manifest they refer to. A reference to a plain
// manifest has none.
func (r *Registry) Attestations(ctx context.Context, p ocispecs.Platform) ([]Statement, digest.Digest, error) {
	desc, dt, err := r.Top(ctx)
	if err != nil {
		return nil, "", err
	}
	if !isIndex(desc.MediaType, dt) {
		return nil, desc.Digest, nil
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(dt, &idx); err != nil {
		return nil, "", fmt.Errorf("%s: index: %w", r.Ref, err)
	}
	img, err := pickManifest(idx, p)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", r.Ref, err)
	}
	f, _, _ := r.resolve(ctx)
	var out []Statement
	for _, d := range idx.Manifests {
		if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" || d.Annotations["vnd.docker.reference.digest"] != img.Digest.String() {
			continue
		}
		mdt, err := fetchAll(ctx, f, d)
		if err != nil {
			return nil, "", fmt.Errorf("%s: attestation manifest %s: %w", r.Ref, d.Digest, err)
		}
		var m ocispecs.Manifest
		if err := json.Unmarshal(mdt, &m); err != nil {
			return nil, "", fmt.Errorf("%s: attestation manifest %s: %w", r.Ref, d.Digest, err)
		}
		for _, l := range m.Layers {
			b, err := fetchAll(ctx, f, l)
			if err != nil {
				return nil, "", fmt.Errorf("%s: attestation %s: %w", r.Ref, l.Digest, err)
			}
			out = append(out, Statement{PredicateType: l.Annotations["in-toto.io/predicate-type"], Raw: b})
		}
	}
	return out, img.Digest, nil
}
