package world

import (
	"fmt"
	"path"
	"time"
)

// basePrebuild makes the amd64 base images' layers with mmdebstrap while
// the Go tools build: mmdebstrap needs only the Debian archive and the
// host's mmdebstrap, not the registry the tools serve, so on a fresh
// machine its two minutes of downloading and unpacking overlap the
// compiler's. A base it made is in the cache (image.json, its layers) but
// not yet in the registry; ensureBase pushes it as it pushes any cached
// base the registry lacks.
type basePrebuild struct {
	done chan struct{}
	// outcome says, per recipe, what the prebuild did ("" when the cache
	// had the base already); err is the first failure, after which the
	// rest is left to ensureBase.
	outcome map[string]string
	err     error
}

// startBasePrebuild starts making the amd64 bases the cache lacks.
func startBasePrebuild(l layout, logf func(string, ...any)) *basePrebuild {
	p := &basePrebuild{done: make(chan struct{}), outcome: map[string]string{}}
	go func() {
		defer close(p.done)
		var bases []*baseImage
		for _, r := range baseRecipes() {
			var parent *baseImage
			parentDigest := ""
			if r.Parent != "" {
				parent = bases[0]
				parentDigest = parent.Digest
			}
			k := key(r, parentDigest, sourceDateEpoch(), baseScriptVersion)
			dir := l.path("bases", r.Name)
			var cached baseImage
			if readJSON(path.Join(dir, "image.json"), &cached) == nil && cached.Key == k && layersIntact(l, &cached) {
				bases = append(bases, &cached)
				continue
			}
			start := time.Now()
			img, err := buildBase(l, r, parent, k, logf)
			if err == nil {
				err = writeJSON(path.Join(dir, "image.json"), img)
			}
			if err != nil {
				p.err = fmt.Errorf("base %s, made beside the Go tools: %w", r.Name, err)
				return
			}
			p.outcome[r.Name] = fmt.Sprintf("built with mmdebstrap beside the Go tools (%s)", time.Since(start).Round(10*time.Millisecond))
			bases = append(bases, img)
		}
	}()
	return p
}

// wait waits for the prebuild and says what it did for recipe.
func (p *basePrebuild) wait(recipe string) (string, error) {
	if p == nil {
		return "", nil
	}
	<-p.done
	return p.outcome[recipe], p.err
}
