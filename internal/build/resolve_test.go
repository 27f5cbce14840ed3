package build

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/buildkit/client/llb/sourceresolver"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

type countingResolver struct {
	calls atomic.Int32
	fail  atomic.Bool
}

func (r *countingResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	r.calls.Add(1)
	if r.fail.Load() {
		return "", "", nil, errors.New("registry down")
	}
	return ref, digest.FromString(ref + opt.ImageOpt.Platform.Architecture), []byte(`{}`), nil
}

// Concurrent solves asking for the same image and platform share one
// resolution; another platform is another resolution; a failure is not
// kept.
func TestResolveCacheShares(t *testing.T) {
	c := newResolveCache()
	r := &countingResolver{}
	amd := sourceresolver.Opt{ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &ocispecs.Platform{OS: "linux", Architecture: "amd64"}}}
	arm := sourceresolver.Opt{ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &ocispecs.Platform{OS: "linux", Architecture: "arm64"}}}
	var wg sync.WaitGroup
	digests := make([]digest.Digest, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, d, _, err := c.wrap(r).ResolveImageConfig(context.Background(), "python:3.13-slim", amd)
			if err != nil {
				t.Error(err)
			}
			digests[i] = d
		}()
	}
	wg.Wait()
	if n := r.calls.Load(); n != 1 {
		t.Errorf("8 concurrent resolutions made %d registry calls, want 1", n)
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Errorf("two answers: %s and %s", d, digests[0])
		}
	}
	if _, d, _, _ := c.wrap(r).ResolveImageConfig(context.Background(), "python:3.13-slim", arm); d == digests[0] || r.calls.Load() != 2 {
		t.Errorf("arm64 answered from amd64's resolution")
	}
	r.fail.Store(true)
	if _, _, _, err := c.wrap(r).ResolveImageConfig(context.Background(), "uv:0.9.17", amd); err == nil {
		t.Fatal("a failed resolution succeeded")
	}
	r.fail.Store(false)
	if _, _, _, err := c.wrap(r).ResolveImageConfig(context.Background(), "uv:0.9.17", amd); err != nil {
		t.Errorf("a failure was kept: %v", err)
	}
}
