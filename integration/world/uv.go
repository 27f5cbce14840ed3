package world

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// UVEnv names the directory holding the uv and uvx binaries the world
// serves as the uv image. Default: ../shared/uv next to the checkout.
const UVEnv = "KTRDR_UV_DIR"

// UVVersion is the uv release the world serves, and uvRelease the sha256
// of its two binaries as ../shared/uv/README.md gives them: a binary that
// is not that release is refused, so the image tag never lies.
const UVVersion = "0.9.17"

var uvRelease = map[string]string{
	"uv":  "658c06f2f2e39253d0e4ab47dcbbd65a1b0c90263172349319d966bffdb5a7c7",
	"uvx": "cc122f31ef00502efcee81329cd23e52f673e2c9564a05af6f01de95dd457dfb",
}

// uvRepo is where the uv image goes in the world's registry: the layout of
// ghcr.io/astral-sh/uv (the binaries at the root), under the same path.
const uvRepo = "astral-sh/uv"

// uvImage is the uv image as cached under uv/ and pushed.
type uvImage struct {
	Key      string    `json:"key"`
	Digest   string    `json:"digest"`
	Manifest string    `json:"manifest"`
	Config   string    `json:"config"`
	Layer    layerFile `json:"layer"`
}

// findUV locates the uv binaries: $KTRDR_UV_DIR, else ../shared/uv from the
// module root.
func findUV(root string) (string, error) {
	dir := os.Getenv(UVEnv)
	if dir == "" {
		dir = filepath.Join(root, "..", "shared", "uv")
	}
	dir, _ = filepath.Abs(dir)
	for name := range uvRelease {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("the uv image needs uv %s's uv and uvx binaries for linux/amd64 in %s (set $%s to their directory): %w", UVVersion, dir, UVEnv, err)
		}
	}
	return dir, nil
}

// ensureUV makes sure the registry serves 127.0.0.1:5000/astral-sh/uv:VERSION,
// made from the binaries in dir: one layer with /uv and /uvx (root-owned,
// 0755, dated at the epoch), entrypoint /uv, as Astral's image has.
func ensureUV(ctx context.Context, l layout, reg *registryClient, dir string) (string, string, error) {
	sums := map[string]string{}
	for name, want := range uvRelease {
		got, err := sha256File(filepath.Join(dir, name))
		if err != nil {
			return "", "", err
		}
		if got != want {
			return "", "", fmt.Errorf("%s has sha256 %s, but uv %s's %s is %s (../shared/uv/README.md): not serving it as uv %s; update UVVersion and uvRelease in integration/world/uv.go for another release",
				filepath.Join(dir, name), got, UVVersion, name, want, UVVersion)
		}
		sums[name] = got
	}
	k := key(sums, UVVersion, sourceDateEpoch(), 1)
	cacheDir := l.path("uv")
	ref := l.registry + "/" + uvRepo + ":" + UVVersion
	var img uvImage
	if readJSON(filepath.Join(cacheDir, "image.json"), &img) != nil || img.Key != k || !layersIntact(l, &baseImage{Layers: []layerFile{img.Layer}, Manifest: img.Manifest, Config: img.Config}) {
		var err error
		if img, err = makeUVImage(l, dir, k); err != nil {
			return "", "", fmt.Errorf("making the uv image %s: %w", ref, err)
		}
	} else if have, err := reg.manifestDigest(ctx, uvRepo, UVVersion); err == nil && have == img.Digest {
		return ref, "reused", nil
	}
	if err := reg.pushFile(ctx, uvRepo, img.Layer.Digest, img.Layer.Size, l.path(img.Layer.File)); err != nil {
		return "", "", failed("pushing the uv image "+ref, l.logFile("registry"), err)
	}
	if err := reg.pushBytes(ctx, uvRepo, digest.FromString(img.Config).String(), []byte(img.Config)); err != nil {
		return "", "", failed("pushing the uv image "+ref, l.logFile("registry"), err)
	}
	got, err := reg.putManifest(ctx, uvRepo, UVVersion, ocispecs.MediaTypeImageManifest, []byte(img.Manifest))
	if err != nil {
		return "", "", failed("pushing the uv image "+ref, l.logFile("registry"), err)
	}
	if got != img.Digest {
		return "", "", fmt.Errorf("registry stored %s as %s, expected %s", ref, got, img.Digest)
	}
	return ref, "pushed", writeJSON(filepath.Join(cacheDir, "image.json"), img)
}

func makeUVImage(l layout, dir, k string) (uvImage, error) {
	sde := time.Unix(sourceDateEpoch(), 0).UTC()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, name := range []string{"uv", "uvx"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return uvImage{}, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), ModTime: sde, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return uvImage{}, err
		}
		if _, err := tw.Write(b); err != nil {
			return uvImage{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return uvImage{}, err
	}
	diffID := digest.FromBytes(raw.Bytes())
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := io.Copy(zw, &raw); err != nil {
		return uvImage{}, err
	}
	if err := zw.Close(); err != nil {
		return uvImage{}, err
	}
	blob := digest.FromBytes(gz.Bytes())
	rel := filepath.Join("uv", "layer.tar.gz")
	if err := os.MkdirAll(l.path("uv"), 0o755); err != nil {
		return uvImage{}, err
	}
	if err := os.WriteFile(l.path(rel), gz.Bytes(), 0o644); err != nil {
		return uvImage{}, err
	}
	cfg := ocispecs.Image{
		Created:  &sde,
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispecs.ImageConfig{
			Entrypoint: []string{"/uv"},
			Env:        []string{"PATH=/"},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "uv",
				"org.opencontainers.image.version":     UVVersion,
				"org.opencontainers.image.description": "Offline stand-in for ghcr.io/astral-sh/uv:" + UVVersion + ": uv built from its release tag with Debian's crates (dynamically linked: needs glibc 2.39+), /uv and /uvx at the root",
				"org.opencontainers.image.source":      "https://github.com/ktrdr/ktrdr-images/tree/main/integration/world",
			},
		},
		RootFS: ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return uvImage{}, err
	}
	m := ocispecs.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageManifest,
		Config:    ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))},
		Layers:    []ocispecs.Descriptor{{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: blob, Size: int64(gz.Len())}},
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return uvImage{}, err
	}
	return uvImage{
		Key: k, Digest: digest.FromBytes(mb).String(), Manifest: string(mb), Config: string(cb),
		Layer: layerFile{Digest: blob.String(), DiffID: diffID.String(), Size: int64(gz.Len()), File: rel},
	}, nil
}

// UVRun runs script with /bin/sh in a container of the python base with
// the world's uv at /usr/local/bin/uv, in /work, a writable copy of the
// files of dir that include names (all when empty), with the host's network (so
// the index on 127.0.0.1 is reachable), as root, HOME and the uv cache in
// /tmp. It returns /work afterwards, exported to out. Progress goes to log.
func (w *World) UVRun(ctx context.Context, dir string, include []string, script, out string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	uv := llb.Image(w.UVImage+":"+w.UVVersion, llb.Platform(platform), llb.WithCustomNamef("uv image %s:%s", w.UVImage, w.UVVersion))
	base := llb.Image(w.PythonBase+"@"+w.PythonBaseDigest, llb.Platform(platform), llb.WithCustomName("python base "+w.PythonBase)).
		File(llb.Copy(uv, "/uv", "/usr/local/bin/uv"), llb.WithCustomName("uv into the python base"))
	var localOpts []llb.LocalOption
	if len(include) > 0 {
		localOpts = append(localOpts, llb.IncludePatterns(include))
	}
	src := llb.Local("project", localOpts...)
	st := base.File(llb.Copy(src, "/", "/work/", &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}), llb.WithCustomName("the project into /work"))
	run := st.Run(llb.Args([]string{"/bin/sh", "-ec", script}), llb.Dir("/work"),
		llb.AddEnv("HOME", "/tmp"), llb.AddEnv("UV_CACHE_DIR", "/tmp/uv-cache"), llb.AddEnv("UV_PYTHON_DOWNLOADS", "never"),
		llb.AddEnv("UV_NO_PROGRESS", "1"), llb.AddEnv("PATH", "/usr/local/bin:/usr/bin:/bin"), llb.AddEnv("SOURCE_DATE_EPOCH", fmt.Sprint(sourceDateEpoch())),
		llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs()), llb.IgnoreCache, llb.WithCustomName("uv: "+firstLine(script)))
	res := llb.Scratch().File(llb.Copy(run.Root(), "/work", "/", &llb.CopyInfo{CopyDirContentsOnly: true}))
	def, err := res.Marshal(ctx, llb.Platform(platform))
	if err != nil {
		return err
	}
	c, err := w.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return err
	}
	opt := client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{"project": fs},
		Exports:     []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}},
	}
	return solve(ctx, c, def, opt, log, func(string, ...any) {})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// LockCommand is how the example's uv.lock is made: uv lock against the
// world's index, nothing else configured (the project has no [tool.uv]
// index), so the lock records the index's files with their sizes and
// sha256, as a lock made against PyPI records PyPI's.
func (w *World) LockCommand() string {
	return "uv lock --index-url " + w.IndexURL
}

// Lock runs LockCommand on the project in dir (its pyproject.toml and, if
// there, uv.lock: uv keeps the versions it pins when they still resolve),
// with args after it (--upgrade-package scipy), and returns the new
// uv.lock.
func (w *World) Lock(ctx context.Context, dir string, log io.Writer, args ...string) ([]byte, error) {
	out, err := os.MkdirTemp("", "ktrdr-lock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	cmd := w.LockCommand()
	for _, a := range args {
		cmd += " " + shellQuote(a)
	}
	if err := w.UVRun(ctx, dir, []string{"pyproject.toml", "uv.lock"}, cmd, out, log); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", cmd, dir, err)
	}
	return os.ReadFile(filepath.Join(out, "uv.lock"))
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
