package world

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// SourceDateEpoch is the time every base image and wheel is stamped with
// (Debian 13 "trixie" was released on 2025-08-09), unless $SOURCE_DATE_EPOCH
// says otherwise.
const SourceDateEpoch int64 = 1754697600

func sourceDateEpoch() int64 {
	if v, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil && v > 0 {
		return v
	}
	return SourceDateEpoch
}

// debianMirror is where every Debian package of the world comes from.
const debianMirror = "http://deb.debian.org/debian"

// baseRecipe describes one base image made with mmdebstrap.
type baseRecipe struct {
	Name       string            `json:"name"`       // short name: python, cuda
	Repo       string            `json:"repo"`       // repository in the registry
	Tag        string            `json:"tag"`        // tag
	Suite      string            `json:"suite"`      // Debian suite
	Components []string          `json:"components"` // archive components
	Packages   []string          `json:"packages"`   // --include
	Env        []string          `json:"env"`        // image config Env (PYTHON_VERSION is added)
	Cmd        []string          `json:"cmd"`
	Labels     map[string]string `json:"labels"`
	// Parent names the recipe whose root filesystem is the first layer; this
	// image adds one layer with the difference, so both share that blob.
	Parent string `json:"parent,omitempty"`
	// Arch is the Debian architecture, "" for amd64 (kept out of the cache
	// key then, so the amd64 images keep theirs).
	Arch string `json:"arch,omitempty"`
}

// arch is the recipe's Debian (and OCI) architecture.
func (r baseRecipe) arch() string {
	if r.Arch == "" {
		return "amd64"
	}
	return r.Arch
}

// baseScriptVersion changes whenever the way base images are made changes.
const baseScriptVersion = 3

var pythonPackages = []string{
	// What the official python:3.13-slim has: Python with venv and pip,
	// CA certificates, netbase and tzdata, passwd for useradd/groupadd.
	"python3", "python3-venv", "python3-pip", "python-is-python3",
	"ca-certificates", "netbase", "tzdata", "passwd",
}

// cudaPackages is Debian's CUDA runtime (non-free), as offline-world.md
// lists it. cuDNN is not obtainable from Debian's archive.
var cudaPackages = []string{
	"libcudart12", "libcublas12", "libcublaslt12", "libcufft11", "libcurand10",
	"libcusolver11", "libcusparse12", "libnvrtc12", "libnccl2", "libnvtoolsext1",
	"libnvjitlink12",
}

var commonEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
}

func baseRecipes() []baseRecipe {
	labels := func(desc string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.description": desc,
			"org.opencontainers.image.source":      "https://github.com/ktrdr/ktrdr-images/tree/main/integration/world",
			"org.opencontainers.image.base.name":   "debian:trixie (mmdebstrap)",
		}
	}
	python := baseRecipe{
		Name: "python", Repo: "library/python", Tag: "3.13-slim", Suite: "trixie",
		Components: []string{"main"},
		Packages:   pythonPackages,
		Env:        commonEnv,
		Cmd:        []string{"python3"},
		Labels:     labels("Offline stand-in for python:3.13-slim: Debian trixie's python3 made with mmdebstrap"),
	}
	cuda := baseRecipe{
		Name: "cuda", Repo: "offline/python-cuda", Tag: "3.13-trixie", Suite: "trixie",
		Components: []string{"main", "contrib", "non-free"},
		Packages:   append(append([]string{}, pythonPackages...), cudaPackages...),
		Env: append(append([]string{}, commonEnv...),
			"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"),
		Cmd:    []string{"python3"},
		Labels: labels("Offline CUDA base: the python:3.13-slim stand-in plus Debian trixie's CUDA 12 runtime libraries (non-free); no cuDNN"),
		Parent: "python",
	}
	return []baseRecipe{python, cuda}
}

// arm64Recipe is the python base for linux/arm64: the same packages,
// installed by mmdebstrap under QEMU (maintainer scripts run emulated),
// pushed by digest and joined with the amd64 image under the python base's
// tag as one OCI index. worker-gpu's CUDA base stays amd64-only, as
// KTRDR's is.
func arm64Recipe() baseRecipe {
	r := baseRecipes()[0]
	r.Name = "python-arm64"
	r.Arch = "arm64"
	return r
}

// baseImage is a base image as cached under bases/NAME and pushed.
type baseImage struct {
	Key      string      `json:"key"`
	Ref      string      `json:"ref"`    // 127.0.0.1:5000/repo:tag
	Digest   string      `json:"digest"` // manifest digest
	Manifest string      `json:"manifest"`
	Config   string      `json:"config"`
	Layers   []layerFile `json:"layers"`
	Python   string      `json:"python"`   // Debian version of python3.13
	Packages int         `json:"packages"` // Debian packages installed
}

type layerFile struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
	File   string `json:"file"` // relative to the cache directory
}

// Size is the compressed size of the image: the sum of its layers.
func (b *baseImage) Size() int64 {
	var n int64
	for _, l := range b.Layers {
		n += l.Size
	}
	return n
}

// ensureBase makes sure the registry serves the recipe's image: reused when
// the cache and the registry agree, pushed again from the cache when only
// the registry lost it, made anew with mmdebstrap otherwise.
//
// byDigest pushes and checks the manifest by its digest, not the tag: the
// images of an index (python for amd64 and arm64), whose tag ensureBaseIndex
// points at the index.
func ensureBase(ctx context.Context, l layout, reg *registryClient, r baseRecipe, parent *baseImage, byDigest bool, logf func(string, ...any)) (*baseImage, string, error) {
	parentDigest := ""
	if parent != nil {
		parentDigest = parent.Digest
	}
	k := key(r, parentDigest, sourceDateEpoch(), baseScriptVersion)
	dir := l.path("bases", r.Name)
	var cached baseImage
	if readJSON(path.Join(dir, "image.json"), &cached) == nil && cached.Key == k && layersIntact(l, &cached) {
		cached.Ref = l.registry + "/" + r.Repo + ":" + r.Tag
		ref := r.Tag
		if byDigest {
			ref = cached.Digest
		}
		have, err := reg.manifestDigest(ctx, r.Repo, ref)
		if err != nil {
			return nil, "", failed("checking base image "+cached.Ref, l.logFile("registry"), err)
		}
		if have == cached.Digest {
			return &cached, "reused", nil
		}
		err = pushBase(ctx, l, reg, r, &cached, byDigest)
		if err == nil {
			return &cached, "pushed again from the cache", nil
		}
		logf("base %s: pushing the cached image failed (%v); making it anew", r.Name, err)
	}
	img, err := buildBase(l, r, parent, k, logf)
	if err != nil {
		return nil, "", err
	}
	if err := pushBase(ctx, l, reg, r, img, byDigest); err != nil {
		return nil, "", failed("pushing base image "+img.Ref, l.logFile("registry"), err)
	}
	if err := writeJSON(path.Join(dir, "image.json"), img); err != nil {
		return nil, "", err
	}
	return img, "built with mmdebstrap", nil
}

func layersIntact(l layout, img *baseImage) bool {
	for _, lf := range img.Layers {
		st, err := os.Stat(l.path(lf.File))
		if err != nil || st.Size() != lf.Size {
			return false
		}
	}
	return img.Manifest != "" && img.Config != ""
}

func pushBase(ctx context.Context, l layout, reg *registryClient, r baseRecipe, img *baseImage, byDigest bool) error {
	var from []string
	for _, o := range baseRecipes() {
		if o.Repo != r.Repo {
			from = append(from, o.Repo)
		}
	}
	for _, lf := range img.Layers {
		if err := reg.pushFile(ctx, r.Repo, lf.Digest, lf.Size, l.path(lf.File), from...); err != nil {
			return err
		}
	}
	if err := reg.pushBytes(ctx, r.Repo, digest.FromString(img.Config).String(), []byte(img.Config)); err != nil {
		return err
	}
	ref := r.Tag
	if byDigest {
		ref = img.Digest
	}
	got, err := reg.putManifest(ctx, r.Repo, ref, ocispecs.MediaTypeImageManifest, []byte(img.Manifest))
	if err != nil {
		return err
	}
	if got != img.Digest {
		return fmt.Errorf("registry stored %s as %s, expected %s", img.Ref, got, img.Digest)
	}
	return nil
}

// buildBase runs mmdebstrap and turns its root filesystem into image layers.
func buildBase(l layout, r baseRecipe, parent *baseImage, k string, logf func(string, ...any)) (*baseImage, error) {
	dir := l.path("bases", r.Name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(path.Join(dir, "blobs"), 0o755); err != nil {
		return nil, err
	}
	logPath := l.logFile("mmdebstrap-" + r.Name)
	os.Remove(logPath)
	rootfs := path.Join(dir, "rootfs.tar")
	start := time.Now()
	logf("base %s: mmdebstrap %s (%s), log %s", r.Name, r.Suite, strings.Join(r.Components, ","), logPath)
	if err := runLogged(logPath, dir, baseEnv(fmt.Sprintf("SOURCE_DATE_EPOCH=%d", sourceDateEpoch())), "mmdebstrap", mmdebstrapArgs(l, r, rootfs)...); err != nil {
		return nil, failed("making base image "+r.Name+" with mmdebstrap (Debian archive)", logPath, err)
	}
	logf("base %s: mmdebstrap done in %s", r.Name, time.Since(start).Round(time.Second))
	defer os.Remove(rootfs)

	img := &baseImage{Key: k, Ref: l.registry + "/" + r.Repo + ":" + r.Tag}
	var lower map[string]entryKey
	if parent != nil {
		img.Layers = append(img.Layers, parent.Layers...)
		var err error
		if lower, err = indexLayer(l.path(parent.Layers[0].File)); err != nil {
			return nil, fmt.Errorf("base %s: reading the %s layer: %w", r.Name, r.Parent, err)
		}
	}
	lf, status, err := writeLayer(l, r.Name, rootfs, lower)
	if err != nil {
		return nil, fmt.Errorf("base %s: writing the layer: %w", r.Name, err)
	}
	img.Layers = append(img.Layers, lf)
	pkgs := parseDpkgStatus(status)
	img.Packages = len(pkgs)
	img.Python = pkgs["python3.13"]
	if img.Python == "" {
		return nil, failed("base "+r.Name, logPath, errors.New("python3.13 is not installed in the root filesystem"))
	}
	var names []string
	for n, v := range pkgs {
		names = append(names, n+" "+v)
	}
	sort.Strings(names)
	if err := os.WriteFile(path.Join(dir, "packages.txt"), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}

	created := time.Unix(sourceDateEpoch(), 0).UTC()
	env := append(append([]string{}, r.Env...), "PYTHON_VERSION="+upstreamVersion(img.Python))
	cfg := ocispecs.Image{
		Created:  &created,
		Platform: ocispecs.Platform{Architecture: r.arch(), OS: "linux"},
		Config:   ocispecs.ImageConfig{Env: env, Cmd: r.Cmd, Labels: r.Labels},
		RootFS:   ocispecs.RootFS{Type: "layers"},
	}
	for i, layer := range img.Layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.Digest(layer.DiffID))
		by := fmt.Sprintf("mmdebstrap --variant=apt --include=%s %s (ktrdr-images integration/world)", strings.Join(pythonPackages, ","), r.Suite)
		if i > 0 {
			by = fmt.Sprintf("mmdebstrap --components=%s --include=(python base),%s %s: the difference to the python base", strings.Join(r.Components, ","), strings.Join(cudaPackages, ","), r.Suite)
		}
		cfg.History = append(cfg.History, ocispecs.History{Created: &created, CreatedBy: by})
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	man := ocispecs.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageManifest,
		Config: ocispecs.Descriptor{
			MediaType: ocispecs.MediaTypeImageConfig,
			Digest:    digest.FromBytes(cfgJSON),
			Size:      int64(len(cfgJSON)),
		},
	}
	for _, layer := range img.Layers {
		man.Layers = append(man.Layers, ocispecs.Descriptor{
			MediaType: ocispecs.MediaTypeImageLayerGzip,
			Digest:    digest.Digest(layer.Digest),
			Size:      layer.Size,
		})
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	img.Config = string(cfgJSON)
	img.Manifest = string(manJSON)
	img.Digest = digest.FromBytes(manJSON).String()
	return img, nil
}

func mmdebstrapArgs(l layout, r baseRecipe, out string) []string {
	comps := strings.Join(r.Components, " ")
	debs := l.path("debs")
	if r.Arch != "" {
		debs = l.path("debs-" + r.Arch)
	}
	return []string{
		"--mode=root", "--variant=apt", "--format=tar", "--architectures=" + r.arch(),
		"--components=" + strings.Join(r.Components, ","),
		"--include=" + strings.Join(r.Packages, ","),
		`--aptopt=Acquire::Languages "none"`,
		// What Debian's own slim images exclude, kept in the image (as
		// /etc/dpkg/dpkg.cfg.d/99mmdebstrap) so later apt installs honour it.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-include=/usr/share/locale/locale.alias",
		"--dpkgopt=path-exclude=/usr/share/lintian/*",
		// Downloaded .debs are kept in the cache directory, so a rebuild
		// (after a repair, or of the CUDA base) downloads nothing again.
		"--skip=download/empty", "--skip=essential/unlink",
		`--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
		"--setup-hook=sync-in " + debs + " /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives " + debs,
		"--customize-hook=" + customizeScript(r),
		r.Suite, out,
		fmt.Sprintf("deb %s %s %s", debianMirror, r.Suite, comps),
		fmt.Sprintf("deb %s %s-updates %s", debianMirror, r.Suite, comps),
		fmt.Sprintf("deb %s-security %s-security %s", debianMirror, r.Suite, comps),
	}
}

// customizeScript runs on the host with the root filesystem as $1: apt
// sources in deb822 form, Debian's docker-clean apt configuration, no apt
// lists, caches or logs, and pip usable as in the official image. Every
// path it touches is under "$1"; it refuses to run without it.
func customizeScript(r baseRecipe) string {
	comps := strings.Join(r.Components, " ")
	sources := fmt.Sprintf(`Types: deb
URIs: %[1]s
Suites: %[2]s %[2]s-updates
Components: %[3]s
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: %[1]s-security
Suites: %[2]s-security
Components: %[3]s
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`, debianMirror, r.Suite, comps)
	clean := `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`
	return `set -eu; root="$1"; [ -n "$root" ] && [ "$root" != / ] && [ -d "$root/var/lib/dpkg" ] || exit 1
rm -f "$root/etc/apt/sources.list"
mkdir -p "$root/etc/apt/sources.list.d"
printf '%s' '` + sources + `' > "$root/etc/apt/sources.list.d/debian.sources"
printf '%s' '` + clean + `' > "$root/etc/apt/apt.conf.d/docker-clean"
echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/docker-no-languages"
rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
rm -rf "$root"/var/log/apt/* "$root/var/log/dpkg.log" "$root/var/log/alternatives.log" "$root/var/log/bootstrap.log"
rm -f "$root/var/cache/ldconfig/aux-cache" "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$root/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} +
`
}

// entryKey is what makes two tar entries the same file.
type entryKey struct {
	Type     byte
	Mode     int64
	UID, GID int
	Size     int64
	MTime    int64
	Link     string
	Sum      string
}

func normName(name string) string {
	name = strings.TrimPrefix(name, "./")
	return strings.TrimSuffix(name, "/")
}

// keep tells which entries of mmdebstrap's tar belong in an image layer:
// no root entry and no device nodes (the runtime makes /dev).
func keep(h *tar.Header) bool {
	n := normName(h.Name)
	if n == "" || n == "." {
		return false
	}
	switch h.Typeflag {
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return false
	}
	return true
}

func keyOf(h *tar.Header, r io.Reader) (entryKey, error) {
	k := entryKey{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Size: h.Size, MTime: h.ModTime.Unix(), Link: normName(h.Linkname)}
	if h.Typeflag == tar.TypeReg {
		s := sha256.New()
		if _, err := io.Copy(s, r); err != nil {
			return k, err
		}
		k.Sum = hex.EncodeToString(s.Sum(nil))
	}
	return k, nil
}

// indexLayer reads a gzip layer and returns its entries by name.
func indexLayer(file string) (map[string]entryKey, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, err
	}
	out := map[string]entryKey{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		k, err := keyOf(h, tr)
		if err != nil {
			return nil, err
		}
		out[normName(h.Name)] = k
	}
}

// writeLayer turns mmdebstrap's tar into a gzip layer: names normalized,
// device nodes dropped, mtimes clamped to SOURCE_DATE_EPOCH, no atime,
// ctime or user names. With lower set, only entries that differ from lower
// are written (with their parent directories, and the targets of hard
// links), and entries gone from lower get whiteouts. It returns the layer
// and the content of /var/lib/dpkg/status.
func writeLayer(l layout, name, rootfs string, lower map[string]entryKey) (layerFile, []byte, error) {
	sde := sourceDateEpoch()
	include := map[string]bool{}
	present := map[string]bool{}
	hardlinks := map[string]string{}
	if err := eachEntry(rootfs, func(h *tar.Header, r io.Reader) error {
		if !keep(h) {
			return nil
		}
		n := normName(h.Name)
		present[n] = true
		clamp(h, sde)
		k, err := keyOf(h, r)
		if err != nil {
			return err
		}
		if lower == nil || lower[n] != k {
			include[n] = true
		}
		if h.Typeflag == tar.TypeLink {
			hardlinks[n] = normName(h.Linkname)
		}
		return nil
	}); err != nil {
		return layerFile{}, nil, err
	}
	var whiteouts []string
	if lower != nil {
		for n, target := range hardlinks {
			if include[n] {
				include[target] = true
			}
		}
		for n := range include {
			for d := path.Dir(n); d != "." && d != "/"; d = path.Dir(d) {
				include[d] = true
			}
		}
		for n := range lower {
			// Only the top-most removed entry needs a whiteout.
			if d := path.Dir(n); !present[n] && (d == "." || present[d]) {
				whiteouts = append(whiteouts, n)
			}
		}
		sort.Strings(whiteouts)
	}

	tmp := l.path("bases", name, "layer.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return layerFile{}, nil, err
	}
	defer os.Remove(tmp)
	compressed := sha256.New()
	zw, _ := gzip.NewWriterLevel(io.MultiWriter(f, compressed), gzip.DefaultCompression)
	uncompressed := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, uncompressed))
	var status []byte
	err = eachEntry(rootfs, func(h *tar.Header, r io.Reader) error {
		if !keep(h) {
			return nil
		}
		n := normName(h.Name)
		if n == "var/lib/dpkg/status" {
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			status = b
			r = strings.NewReader(string(b))
		}
		if lower != nil && !include[n] {
			return nil
		}
		clamp(h, sde)
		h.Name = n
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = normName(h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	})
	for _, n := range whiteouts {
		if err != nil {
			break
		}
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(n), ".wh."+path.Base(n)), Mode: 0o644, ModTime: time.Unix(sde, 0), Format: tar.FormatPAX})
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return layerFile{}, nil, err
	}
	st, err := os.Stat(tmp)
	if err != nil {
		return layerFile{}, nil, err
	}
	lf := layerFile{
		Digest: "sha256:" + hex.EncodeToString(compressed.Sum(nil)),
		DiffID: "sha256:" + hex.EncodeToString(uncompressed.Sum(nil)),
		Size:   st.Size(),
	}
	lf.File = path.Join("bases", name, "blobs", strings.TrimPrefix(lf.Digest, "sha256:"))
	if err := os.Rename(tmp, l.path(lf.File)); err != nil {
		return layerFile{}, nil, err
	}
	return lf, status, nil
}

func clamp(h *tar.Header, sde int64) {
	if h.ModTime.Unix() > sde {
		h.ModTime = time.Unix(sde, 0)
	}
	h.ModTime = h.ModTime.Truncate(time.Second)
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.Uname, h.Gname = "", ""
	h.Format = tar.FormatPAX
	// Keep extended attributes (file capabilities), drop the rest.
	for k := range h.PAXRecords {
		if !strings.HasPrefix(k, "SCHILY.xattr.") {
			delete(h.PAXRecords, k)
		}
	}
}

func eachEntry(file string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// parseDpkgStatus returns installed package versions by name.
func parseDpkgStatus(b []byte) map[string]string {
	out := map[string]string{}
	for _, stanza := range strings.Split(string(b), "\n\n") {
		var name, version string
		installed := false
		for _, line := range strings.Split(stanza, "\n") {
			switch {
			case strings.HasPrefix(line, "Package: "):
				name = strings.TrimPrefix(line, "Package: ")
			case strings.HasPrefix(line, "Version: "):
				version = strings.TrimPrefix(line, "Version: ")
			case strings.HasPrefix(line, "Status: ") && strings.HasSuffix(line, " installed"):
				installed = true
			}
		}
		if name != "" && installed {
			out[name] = version
		}
	}
	return out
}

// upstreamVersion turns a Debian version (1:3.13.5-2+b1) into 3.13.5.
func upstreamVersion(v string) string {
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	return v
}

// ensureBaseIndex points the tag at one OCI index of imgs (one manifest per
// platform, pushed by digest before), unless it already does.
func ensureBaseIndex(ctx context.Context, l layout, reg *registryClient, r baseRecipe, imgs []*baseImage) (string, string, error) {
	idx := ocispecs.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageIndex,
	}
	for _, img := range imgs {
		var cfg ocispecs.Image
		if err := json.Unmarshal([]byte(img.Config), &cfg); err != nil {
			return "", "", fmt.Errorf("base %s: its config: %w", img.Ref, err)
		}
		p := cfg.Platform
		idx.Manifests = append(idx.Manifests, ocispecs.Descriptor{
			MediaType: ocispecs.MediaTypeImageManifest,
			Digest:    digest.Digest(img.Digest),
			Size:      int64(len(img.Manifest)),
			Platform:  &p,
		})
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return "", "", err
	}
	want := digest.FromBytes(b).String()
	have, err := reg.manifestDigest(ctx, r.Repo, r.Tag)
	if err != nil {
		return "", "", failed("checking base image index "+r.Repo+":"+r.Tag, l.logFile("registry"), err)
	}
	if have == want {
		return want, "reused", nil
	}
	got, err := reg.putManifest(ctx, r.Repo, r.Tag, ocispecs.MediaTypeImageIndex, b)
	if err != nil {
		return "", "", failed("pushing base image index "+r.Repo+":"+r.Tag, l.logFile("registry"), err)
	}
	if got != want {
		return "", "", fmt.Errorf("registry stored the index %s:%s as %s, expected %s", r.Repo, r.Tag, got, want)
	}
	return want, "pushed", nil
}
