package bench

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ktrdr/ktrdr-images/internal/inspect"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// CompressFloor reads the gzip layer desc from src, unpacks it to a temp
// file, and times compressing it again with compress/gzip at the default
// level, BuildKit's own layer compressor: one goroutine per layer, so a
// cold build cannot end before its largest layer is compressed.
func CompressFloor(ctx context.Context, src inspect.Source, desc ocispecs.Descriptor, tmp string) (time.Duration, int64, error) {
	rc, err := src.Blob(ctx, desc)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return 0, 0, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	f, err := os.CreateTemp(tmp, "layer-*.tar")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, zr)
	if err != nil {
		return 0, 0, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	zw := gzip.NewWriter(io.Discard)
	if _, err := io.Copy(zw, f); err != nil {
		return 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return time.Since(start), n, nil
}
