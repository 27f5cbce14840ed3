package build

import (
	"context"
	"sync"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	digest "github.com/opencontainers/go-digest"
)

// resolveCache shares image resolutions between the concurrent solves of
// one Run: every variant resolves the Python base and the uv image, and
// without it each solve asks the registry again (four variants, eight
// round trips for two answers). It also guarantees that the images of one
// run are built on one digest of each base. A failed resolution is not
// kept: the next caller tries again, through its own gateway.
type resolveCache struct {
	mu sync.Mutex
	m  map[string]*resolved
}

type resolved struct {
	done chan struct{}
	ref  string
	dgst digest.Digest
	cfg  []byte
	err  error
}

func newResolveCache() *resolveCache { return &resolveCache{m: map[string]*resolved{}} }

// wrap returns a resolver answering from the cache, and through r when the
// answer is not there yet.
func (c *resolveCache) wrap(r sourceresolver.ImageMetaResolver) sourceresolver.ImageMetaResolver {
	return cachedResolver{c: c, r: r}
}

type cachedResolver struct {
	c *resolveCache
	r sourceresolver.ImageMetaResolver
}

func (cr cachedResolver) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	key := ref
	if io := opt.ImageOpt; io != nil {
		if io.Platform != nil {
			key += " " + platforms.Format(*io.Platform)
		}
		key += " " + io.ResolveMode
	}
	for {
		cr.c.mu.Lock()
		e, ok := cr.c.m[key]
		if !ok {
			e = &resolved{done: make(chan struct{})}
			cr.c.m[key] = e
			cr.c.mu.Unlock()
			e.ref, e.dgst, e.cfg, e.err = cr.r.ResolveImageConfig(ctx, ref, opt)
			if e.err != nil {
				cr.c.mu.Lock()
				delete(cr.c.m, key)
				cr.c.mu.Unlock()
			}
			close(e.done)
			return e.ref, e.dgst, e.cfg, e.err
		}
		cr.c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return "", "", nil, ctx.Err()
		}
		if e.err == nil {
			return e.ref, e.dgst, e.cfg, nil
		}
		// The first caller failed; try again ourselves.
	}
}
