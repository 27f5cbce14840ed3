// Package inspect measures built images from what a registry (or an OCI
// archive) stores: manifest digest, compressed size (the manifest's layer
// sizes), uncompressed size (the layers' tar streams), layer count, and how
// much of the layers' content is duplicated, by replaying the layers' tar
// headers onto a file table.
//
// It reads blobs through a small Source interface so that a registry and a
// local OCI tar are measured the same way, and caches per blob digest, so
// layers shared between images are read once.
package inspect

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Source reads an image's manifest and blobs.
type Source interface {
	// Manifest returns the image manifest for the platform (resolving an
	// index) and its digest.
	Manifest(ctx context.Context, platform ocispecs.Platform) (ocispecs.Manifest, digest.Digest, error)
	// Blob opens a blob.
	Blob(ctx context.Context, desc ocispecs.Descriptor) (io.ReadCloser, error)
}

// Image is what Inspect measures.
type Image struct {
	Digest digest.Digest
	// Compressed is the sum of the layer blobs' sizes plus the config.
	Compressed int64
	// Uncompressed is the sum of the layers' uncompressed tar streams.
	Uncompressed int64
	Layers       []Layer
	// ContentBytes sums the regular files' sizes over every layer;
	// UniqueBytes sums those of the final filesystem. ContentBytes /
	// UniqueBytes above 1 is content written twice (a chown -R copy, a file
	// replaced in a later layer).
	ContentBytes int64
	UniqueBytes  int64
}

// Layer is one layer's measures.
type Layer struct {
	Digest       digest.Digest `json:"digest"`
	Compressed   int64         `json:"compressed_bytes"`
	Uncompressed int64         `json:"uncompressed_bytes"`
	files        []entry
}

// Files are the paths the layer's tar holds (whiteouts excluded), in
// order, absolute.
func (l Layer) Files() []string {
	var out []string
	for _, e := range l.files {
		if !e.whiteout && !e.opaque {
			out = append(out, e.name)
		}
	}
	return out
}

// Dist is a Python distribution a layer installs.
type Dist struct{ Name, Version string }

// Distributions are the Python distributions the layer installs: each
// site-packages/NAME-VERSION.dist-info/METADATA it holds, with the name
// normalized (lower case, "-"), sorted by name.
func (l Layer) Distributions() []Dist {
	var out []Dist
	for _, e := range l.files {
		if e.whiteout || e.opaque || path.Base(e.name) != "METADATA" {
			continue
		}
		dir := path.Base(path.Dir(e.name))
		if !strings.HasSuffix(dir, ".dist-info") || path.Base(path.Dir(path.Dir(e.name))) != "site-packages" {
			continue
		}
		name, version, ok := strings.Cut(strings.TrimSuffix(dir, ".dist-info"), "-")
		if !ok {
			continue
		}
		out = append(out, Dist{Name: strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name)), Version: version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type entry struct {
	name     string
	size     int64
	whiteout bool
	opaque   bool
}

// Inspector measures images and remembers layers it has read.
type Inspector struct {
	mu     sync.Mutex
	layers map[digest.Digest]*Layer
}

// New returns an Inspector with an empty layer cache.
func New() *Inspector { return &Inspector{layers: map[digest.Digest]*Layer{}} }

// Inspect measures the image src serves for platform.
func (in *Inspector) Inspect(ctx context.Context, src Source, platform ocispecs.Platform) (*Image, error) {
	m, dgst, err := src.Manifest(ctx, platform)
	if err != nil {
		return nil, err
	}
	img := &Image{Digest: dgst, Compressed: m.Config.Size}
	for _, d := range m.Layers {
		l, err := in.layer(ctx, src, d)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		img.Layers = append(img.Layers, *l)
		img.Compressed += d.Size
		img.Uncompressed += l.Uncompressed
	}
	img.ContentBytes, img.UniqueBytes = replay(img.Layers)
	return img, nil
}

func (in *Inspector) layer(ctx context.Context, src Source, d ocispecs.Descriptor) (*Layer, error) {
	in.mu.Lock()
	l, ok := in.layers[d.Digest]
	in.mu.Unlock()
	if ok {
		return l, nil
	}
	rc, err := src.Blob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	l = &Layer{Digest: d.Digest, Compressed: d.Size}
	var r io.Reader
	switch {
	case strings.HasSuffix(d.MediaType, "gzip"):
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(d.MediaType, "zstd"):
		zr, err := zstd.NewReader(rc)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		r = rc
	}
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean("/" + h.Name)
		base := path.Base(name)
		switch {
		case base == ".wh..wh..opq":
			l.files = append(l.files, entry{name: path.Dir(name), opaque: true})
		case strings.HasPrefix(base, ".wh."):
			l.files = append(l.files, entry{name: path.Join(path.Dir(name), strings.TrimPrefix(base, ".wh.")), whiteout: true})
		case h.Typeflag == tar.TypeReg:
			l.files = append(l.files, entry{name: name, size: h.Size})
		default:
			l.files = append(l.files, entry{name: name})
		}
	}
	// Drain the padding so the count is the whole stream.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, err
	}
	l.Uncompressed = cr.n
	in.mu.Lock()
	in.layers[d.Digest] = l
	in.mu.Unlock()
	return l, nil
}

// replay applies the layers' entries in order and returns the bytes of
// regular files written over all layers and the bytes of the final tree.
func replay(layers []Layer) (content, unique int64) {
	final := map[string]int64{}
	for _, l := range layers {
		for _, e := range l.files {
			switch {
			case e.opaque:
				removeUnder(final, e.name, false)
			case e.whiteout:
				removeUnder(final, e.name, true)
			default:
				content += e.size
				final[e.name] = e.size
			}
		}
	}
	for _, s := range final {
		unique += s
	}
	return content, unique
}

func removeUnder(m map[string]int64, dir string, self bool) {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for k := range m {
		if (self && k == dir) || strings.HasPrefix(k, prefix) {
			delete(m, k)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// pickManifest resolves an index to the platform's manifest descriptor.
func pickManifest(idx ocispecs.Index, p ocispecs.Platform) (ocispecs.Descriptor, error) {
	for _, d := range idx.Manifests {
		if d.Platform == nil || d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture {
			return d, nil
		}
	}
	if len(idx.Manifests) == 1 {
		return idx.Manifests[0], nil
	}
	return ocispecs.Descriptor{}, fmt.Errorf("no manifest for %s/%s in the index", p.OS, p.Architecture)
}

func isIndex(mediaType string, dt []byte) bool {
	if strings.Contains(mediaType, "index") || strings.Contains(mediaType, "manifest.list") {
		return true
	}
	var probe struct {
		Manifests json.RawMessage `json:"manifests"`
	}
	return json.Unmarshal(dt, &probe) == nil && len(probe.Manifests) > 0
}
