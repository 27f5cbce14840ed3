package integration

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/moby/buildkit/client"
)

// Hostile build contexts (issue 17, drill 5), on the CLI's path: what
// reaches buildkitd is what .dockerignore lets through, and symlinks
// reach it as symlinks.

// transferred is the most bytes a rawjson progress log reports for the
// context's transfer ("transferring context:").
func transferred(t *testing.T, path string) int64 {
	t.Helper()
	var most int64 = -1
	eachStatus(t, path, func(st *client.SolveStatus) {
		for _, s := range st.Statuses {
			if strings.HasPrefix(s.ID, "transferring context") {
				most = max(most, s.Current)
			}
		}
	})
	return most
}

// TestHostileContext: a 2 GiB file in a directory the example's
// .dockerignore excludes (archive/) is never sent (the transfer is
// measured), and a symlink inside the context is in the image as a
// symlink. A .dockerignore that excludes a copied directory, a copied
// directory that is a symlink out of the context, and symlinks out of the
// context inside copied directories (absolute and climbing: a wheel
// build follows them into the image's files) are errors naming the path
// before anything is sent.
func TestHostileContext(t *testing.T) {
	w := world.ForTest(t)
	dir := copyExample(t)
	big := filepath.Join(dir, "archive", "market-data.bin")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 2<<30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	// A link that stays inside the context is sent and copied as a link.
	links := map[string]string{"config/current.yaml": "settings.yaml"}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	o := offline(w, "itest-context")
	o.Set("source-date-epoch", epoch)
	logPath := filepath.Join(t.TempDir(), "progress.json")
	rep, err := buildWatched(t, w, buildArgs{dir: dir, variants: []string{"backend-prod"}, opts: o, push: true}, logPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := transferred(t, logPath)
	t.Logf("context sent: %d bytes (the directory holds a 2 GiB file under archive/)", sent)
	if sent < 0 {
		t.Fatal("no transfer of the context was reported")
	}
	if sent > 64<<20 {
		t.Errorf("%d bytes of context sent: the excluded 2 GiB file went", sent)
	}

	// The links, in the image's layers.
	ctx := context.Background()
	reg := inspect.NewRegistry(rep.Images[0].Ref, nil)
	m, _, err := reg.Manifest(ctx, amd64)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, l := range m.Layers {
		if l.Size > 32<<20 { // the project's code is in a small layer
			continue
		}
		rc, err := reg.Blob(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			for link, target := range links {
				if strings.HasSuffix(h.Name, link) {
					if h.Typeflag != tar.TypeSymlink || h.Linkname != target {
						t.Errorf("%s is in the image as type %c (link %q, %d bytes), not as the symlink to %s", h.Name, h.Typeflag, h.Linkname, h.Size, target)
					}
					found[link] = h.Name
				}
			}
		}
		rc.Close()
	}
	for link := range links {
		if found[link] == "" {
			t.Errorf("%s is not in the image at all", link)
		}
	}
	t.Logf("symlinks in the image, as symlinks: %v", found)

	// Refused before anything is sent.
	for _, tc := range []struct {
		name  string
		setup func(dir string) error
		want  []string
	}{
		{"dockerignore excludes a copied path", func(dir string) error {
			appendLine(t, filepath.Join(dir, ".dockerignore"), "strategies/")
			return nil
		}, []string{`image "backend-prod", key copy: copies strategies`, ".dockerignore"}},
		{"copied path links out", func(dir string) error {
			if err := os.RemoveAll(filepath.Join(dir, "strategies")); err != nil {
				return err
			}
			return os.Symlink("/etc", filepath.Join(dir, "strategies"))
		}, []string{"variant backend-prod", "strategies is a symlink to /etc, outside the build context"}},
		{"absolute link in a copied directory", func(dir string) error {
			return os.Symlink("/etc/shadow", filepath.Join(dir, "ktrdr", "leak"))
		}, []string{"variant backend-prod", "ktrdr/leak is a symlink to /etc/shadow, outside the build context"}},
		{"climbing link in a copied directory", func(dir string) error {
			return os.Symlink("../../../../../../../etc/hostname", filepath.Join(dir, "config", "leak"))
		}, []string{"variant backend-prod", "config/leak is a symlink to ../../../../../../../etc/hostname, outside the build context"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyExample(t)
			if err := tc.setup(d); err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(t.TempDir(), "progress.json")
			_, err := buildWatched(t, w, buildArgs{dir: d, variants: []string{"backend-prod"}, opts: o}, logPath, nil)
			if err == nil {
				t.Fatal("built")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error lacks %q: %v", s, err)
				}
			}
			if n := transferred(t, logPath); n > 0 {
				t.Errorf("%d bytes were sent before the error", n)
			}
		})
	}
}
