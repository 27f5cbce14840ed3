package inspect

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

type file struct {
	name string
	size int
}

func layerBlob(t *testing.T, files []file) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Size: int64(f.size), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, f.size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type memSource struct {
	m     ocispecs.Manifest
	blobs map[digest.Digest][]byte
	reads int
}

func (s *memSource) Manifest(context.Context, ocispecs.Platform) (ocispecs.Manifest, digest.Digest, error) {
	return s.m, digest.FromString("m"), nil
}

func (s *memSource) Blob(_ context.Context, d ocispecs.Descriptor) (io.ReadCloser, error) {
	s.reads++
	return io.NopCloser(bytes.NewReader(s.blobs[d.Digest])), nil
}

func source(t *testing.T, layers ...[]file) *memSource {
	s := &memSource{blobs: map[digest.Digest][]byte{}}
	s.m.Config.Size = 100
	for _, l := range layers {
		b := layerBlob(t, l)
		d := digest.FromBytes(b)
		s.blobs[d] = b
		s.m.Layers = append(s.m.Layers, ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(b))})
	}
	return s
}

func TestInspectCountsDuplication(t *testing.T) {
	base := []file{{"usr/bin/python3", 1000}, {"etc/passwd", 100}}
	venv := []file{{"app/.venv/lib/x.py", 5000}}
	// A chown -R style layer rewrites the venv: its bytes count twice.
	chown := []file{{"app/.venv/lib/x.py", 5000}, {".wh.gone", 0}}
	in := New()
	clean, err := in.Inspect(context.Background(), source(t, base, venv), ocispecs.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if clean.ContentBytes != 6100 || clean.UniqueBytes != 6100 || len(clean.Layers) != 2 {
		t.Errorf("clean: %+v", clean)
	}
	if clean.Uncompressed < 6100 || clean.Compressed <= 100 {
		t.Errorf("sizes: %d uncompressed, %d compressed", clean.Uncompressed, clean.Compressed)
	}
	src := source(t, base, venv, chown)
	dup, err := in.Inspect(context.Background(), src, ocispecs.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if dup.ContentBytes != 11100 || dup.UniqueBytes != 6100 {
		t.Errorf("duplicated: content %d unique %d", dup.ContentBytes, dup.UniqueBytes)
	}
	// The first two layers were read for the first image: only the third
	// is read again.
	if src.reads != 1 {
		t.Errorf("read %d blobs, want 1 (the others are cached)", src.reads)
	}
}

func TestWhiteoutsRemoveFiles(t *testing.T) {
	l1 := []file{{"a/b/c", 10}, {"a/d", 20}}
	l2 := []file{{"a/b/.wh..wh..opq", 0}, {"a/.wh.d", 0}}
	img, err := New().Inspect(context.Background(), source(t, l1, l2), ocispecs.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ContentBytes != 30 || img.UniqueBytes != 0 {
		t.Errorf("content %d unique %d", img.ContentBytes, img.UniqueBytes)
	}
}
