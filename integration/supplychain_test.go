package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/inspect"
	"github.com/ktrdr/ktrdr-images/internal/sbom"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/sirupsen/logrus"
)

// statement is an in-toto statement as BuildKit stores it.
type statement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// statementsByType decodes an image's in-toto statements (what names the
// image in failures), keyed by predicate type.
func statementsByType(t *testing.T, what string, stmts []inspect.Statement) map[string]statement {
	t.Helper()
	out := map[string]statement{}
	for _, s := range stmts {
		var st statement
		if err := json.Unmarshal(s.Raw, &st); err != nil {
			t.Fatalf("%s: statement: %v", what, err)
		}
		out[st.PredicateType] = st
	}
	return out
}

func spdxSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "internal", "sbom", "testdata", "spdx-2.3.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("spdx.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("spdx.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lockHashes maps "name==version" to the sha256 hashes the example's lock
// records for its artifacts.
func lockHashes(t *testing.T, dir string) map[string]map[string]bool {
	t.Helper()
	l, err := uvlock.Load(filepath.Join(dir, "uv.lock"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, p := range l.Packages {
		k := p.Name + "==" + p.Version
		if out[k] == nil {
			out[k] = map[string]bool{}
		}
		for _, a := range p.Wheels {
			out[k][strings.TrimPrefix(a.Hash, "sha256:")] = true
		}
		if p.Sdist != nil {
			out[k][strings.TrimPrefix(p.Sdist.Hash, "sha256:")] = true
		}
	}
	return out
}

// TestSBOMAndProvenance builds backend-prod and worker-cpu with --sbom,
// --sbom-out and --provenance mode=max, and checks in the registry: each
// pushed index carries an SPDX 2.3 SBOM and a provenance attestation for
// its image; the SBOM validates against the schema, is the file written
// to --sbom-out, lists exactly the distributions the image's layers hold
// with the lock's versions and hashes, and the Debian packages of its
// dpkg status; the OCI annotations are on manifest and index. Built
// again without attestations, the image keeps the very manifest digest
// the index points to.
func TestSBOMAndProvenance(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	o := offline(w, "itest-sbom")
	for k, v := range map[string]string{"source-date-epoch": epoch, "revision": "0123456789abcdef0123456789abcdef01234567", "source": "https://example.org/ktrdr"} {
		if err := o.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "sbom")
	names := []string{"backend-prod", "worker-cpu"}
	rep, err := runBuild(t, w, buildArgs{dir: example, variants: names, opts: o, probe: true, push: true, sbom: true, sbomOut: out, provenance: "mode=max"})
	if err != nil {
		t.Fatal(err)
	}
	schema := spdxSchema(t)
	hashes := lockHashes(t, example)
	for _, img := range rep.Images {
		reg := inspect.NewRegistry(img.Ref, nil)
		top, raw, err := reg.Top(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if top.MediaType != ocispecs.MediaTypeImageIndex {
			t.Fatalf("%s: %s is a %s, not an index with attestations", img.Variant, img.Ref, top.MediaType)
		}
		var idx ocispecs.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			t.Fatal(err)
		}
		stmts, manifest, err := reg.Attestations(ctx, amd64)
		if err != nil {
			t.Fatal(err)
		}
		types := statementsByType(t, img.Variant, stmts)
		for _, st := range types {
			if len(st.Subject) == 0 || "sha256:"+st.Subject[0].Digest["sha256"] != manifest.String() {
				t.Errorf("%s: %s's subject %+v is not the image manifest %s", img.Variant, st.PredicateType, st.Subject, manifest)
			}
		}
		var prov bool
		for k := range types {
			prov = prov || strings.HasPrefix(k, "https://slsa.dev/provenance/")
		}
		if !prov {
			t.Errorf("%s: no provenance attestation among %v", img.Variant, keys(types))
		}
		st, ok := types[sbom.PredicateType]
		if !ok {
			t.Fatalf("%s: no SPDX attestation among %v", img.Variant, keys(types))
		}

		// The attestation is the --sbom-out file, and valid SPDX 2.3.
		file, err := os.ReadFile(filepath.Join(out, img.Variant+".spdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		json.Unmarshal(st.Predicate, &a)
		json.Unmarshal(file, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the attached SBOM is not the --sbom-out file", img.Variant)
		}
		if err := schema.Validate(a); err != nil {
			t.Errorf("%s: the SBOM does not validate against SPDX 2.3: %v", img.Variant, err)
		}
		var doc sbom.Document
		if err := json.Unmarshal(st.Predicate, &doc); err != nil {
			t.Fatal(err)
		}

		// Exactly the distributions the layers hold, at their versions.
		installed := map[string]string{}
		for _, l := range rep.Measures[img.Variant].Layers {
			for _, d := range l.Distributions() {
				installed[normalizeName(d.Name)] = d.Version
			}
		}
		listed := doc.PythonPackages()
		if !reflect.DeepEqual(installed, listed) {
			t.Errorf("%s: the SBOM's Python distributions differ from the layers':\n sbom   %v\n layers %v", img.Variant, listed, installed)
		}
		var withHash, debs int
		var withoutHash, project []string
		var torch, tini *sbom.Package
		for i, p := range doc.Packages {
			purl := ""
			if len(p.ExternalRefs) > 0 {
				purl = p.ExternalRefs[0].ReferenceLocator
			}
			switch {
			case strings.HasPrefix(purl, "pkg:pypi/") && p.PrimaryPackagePurpose == "LIBRARY":
				if p.Name == "torch" {
					torch = &doc.Packages[i]
				}
				if len(p.Checksums) == 0 {
					// Only a pin the lock records no hash for (the CPU
					// torch, from the CPU index) may be listed without.
					if len(hashes[p.Name+"=="+p.VersionInfo]) > 0 {
						t.Errorf("%s: %s %s has no checksum in the SBOM, though the lock records its sha256", img.Variant, p.Name, p.VersionInfo)
					}
					withoutHash = append(withoutHash, p.Name)
					continue
				}
				withHash++
				if !hashes[p.Name+"=="+p.VersionInfo][p.Checksums[0].ChecksumValue] {
					t.Errorf("%s: %s %s's sha256 %s is not one the lock records", img.Variant, p.Name, p.VersionInfo, p.Checksums[0].ChecksumValue)
				}
			case strings.HasPrefix(purl, "pkg:pypi/"):
				project = append(project, p.Name) // the app itself
			case strings.HasPrefix(purl, "pkg:deb/debian/"):
				debs++
				if p.Name == "tini" {
					tini = &doc.Packages[i]
				}
				if !strings.Contains(purl, "?arch=") {
					t.Errorf("%s: deb purl without arch: %s", img.Variant, purl)
				}
			}
		}
		// Every Python entry is counted: the project, or a library with
		// the lock's sha256, or without one because the lock has none
		// (worker-cpu's torch alone).
		wantWithout := []string{}
		if img.Variant == "worker-cpu" {
			wantWithout = []string{"torch"}
		}
		if len(project) != 1 {
			t.Errorf("%s: the SBOM lists %v as the project, want one", img.Variant, project)
		}
		if len(project)+withHash+len(withoutHash) != len(listed) || !slices.Equal(withoutHash, wantWithout) {
			t.Errorf("%s: %d Python entries: the project %v, %d with the lock's sha256, without one: %v (want only %v)", img.Variant, len(listed), project, withHash, withoutHash, wantWithout)
		}
		if tini == nil || debs < 50 {
			t.Errorf("%s: %d Debian packages, tini among them: %v (want the runtime's dpkg status)", img.Variant, debs, tini != nil)
		}
		if img.Variant == "worker-cpu" {
			if torch == nil || !strings.HasSuffix(torch.VersionInfo, "+cpu") || !strings.Contains(torch.SourceInfo, "/whl/cpu") {
				t.Errorf("worker-cpu: torch entry %+v, want the CPU build from the CPU index", torch)
			}
		}
		t.Logf("%s: SBOM of %d packages (%d Python, %d with the lock's sha256; %d Debian), %d relationships; attestations %v",
			img.Variant, len(doc.Packages), len(listed), withHash, debs, len(doc.Relationships), keys(types))

		// The OCI keys are annotations of the index and of the manifest.
		for _, k := range []string{"org.opencontainers.image.revision", "org.opencontainers.image.source", "org.opencontainers.image.created", "org.opencontainers.image.version"} {
			if idx.Annotations[k] == "" {
				t.Errorf("%s: index annotation %s missing: %v", img.Variant, k, idx.Annotations)
			}
		}
		m, _, err := reg.Manifest(ctx, amd64)
		if err != nil {
			t.Fatal(err)
		}
		if m.Annotations["org.opencontainers.image.revision"] != "0123456789abcdef0123456789abcdef01234567" || m.Annotations["org.opencontainers.image.created"] != "2023-11-14T22:13:20Z" {
			t.Errorf("%s: manifest annotations %v", img.Variant, m.Annotations)
		}
	}

	// Without attestations: a plain manifest, the same one.
	plain := offline(w, "itest-sbom-plain")
	for k, v := range map[string]string{"source-date-epoch": epoch, "revision": "0123456789abcdef0123456789abcdef01234567", "source": "https://example.org/ktrdr"} {
		plain.Set(k, v)
	}
	prep, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod"}, opts: plain, probe: true, push: true})
	if err != nil {
		t.Fatal(err)
	}
	top, _, err := inspect.NewRegistry(prep.Images[0].Ref, nil).Top(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, attested, err := inspect.NewRegistry(rep.Images[0].Ref, nil).Attestations(ctx, amd64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backend-prod without attestations: %s %s; with them the index points to %s", top.MediaType, top.Digest, attested)
	if top.MediaType != ocispecs.MediaTypeImageManifest || top.Digest != attested {
		t.Errorf("without attestations backend-prod is %s %s, want the plain manifest %s the attested index points to", top.MediaType, top.Digest, attested)
	}

	// The SBOM is reproducible: built again, the same bytes.
	again := filepath.Join(t.TempDir(), "again")
	if _, err := runBuild(t, w, buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o, probe: false, sbomOut: again}); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(filepath.Join(out, "backend-prod.spdx.json"))
	y, _ := os.ReadFile(filepath.Join(again, "backend-prod.spdx.json"))
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Errorf("backend-prod's SBOM differs between two builds with SOURCE_DATE_EPOCH (%d and %d bytes)", len(x), len(y))
	}
}

// TestFrontendSBOM: docker buildx build --sbom=true through the frontend
// image attaches our SBOM (no scanner image is pulled: the world's
// registry has none), and buildx imagetools inspect shows it.
func TestFrontendSBOM(t *testing.T) {
	w := world.ForTest(t)
	fe := frontendImage(t, w)
	bin, env := buildxEnv(t, w)
	syntax := filepath.Join(t.TempDir(), "ktrdr.images")
	if err := os.WriteFile(syntax, []byte("# syntax="+fe+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := w.Registry + "/itest-buildx-sbom/ktrdr-backend:prod"
	args := []string{"build", "--progress", "plain", "-f", syntax, "--target", "backend-prod", "--sbom=true", "--provenance=false",
		"--output", "type=image,name=" + ref + ",push=true,rewrite-timestamp=true"}
	ba := buildArgsFor(w)
	for _, k := range sortedKeys(ba) {
		args = append(args, "--build-arg", k+"="+ba[k])
	}
	out, err := runCmd(t, env, "..", bin, append(args, "examples/ktrdr")...)
	if err != nil {
		t.Fatalf("buildx build --sbom=true: %v\n%s", err, lastLines(out, 40))
	}
	if strings.Contains(out, "buildkit-syft-scanner") {
		t.Errorf("the build went for BuildKit's scanner image:\n%s", lastLines(out, 20))
	}
	out, err = runCmd(t, env, "", bin, "imagetools", "inspect", ref, "--format", "{{json .SBOM}}")
	if err != nil {
		t.Fatalf("imagetools inspect: %v\n%s", err, lastLines(out, 20))
	}
	var got struct {
		SPDX sbom.Document `json:"SPDX"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("imagetools inspect --format '{{json .SBOM}}': %v\n%s", err, lastLines(out, 10))
	}
	py := got.SPDX.PythonPackages()
	if got.SPDX.SPDXVersion != "SPDX-2.3" || py["fastapi"] == "" || py["torch"] != "" {
		t.Errorf("imagetools shows %s with %d Python packages (fastapi %q, torch %q)", got.SPDX.SPDXVersion, len(py), py["fastapi"], py["torch"])
	}
	t.Logf("imagetools inspect: %s, %d packages, %d Python", got.SPDX.SPDXVersion, len(got.SPDX.Packages), len(py))
}

// TestBuildctlAttestations: buildctl through the frontend image with
// --opt attest:sbom= and attest:provenance=mode=min, installing from the
// private index with its password as a buildctl --secret: the pushed
// index carries both attestations, and the SBOM names the private index.
func TestBuildctlAttestations(t *testing.T) {
	w := world.ForTest(t)
	fe := frontendImage(t, w)
	url, creds, err := w.PrivateIndex()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KTRDR_ITEST_INDEX_PASSWORD", creds.Password)
	ref := w.Registry + "/itest-buildctl-attest/ktrdr-backend:prod"
	out, err := buildctlFrontend(t, w, fe, "backend-prod", "type=image,name="+ref+",push=true,rewrite-timestamp=true",
		"--opt", "attest:sbom=", "--opt", "attest:provenance=mode=min",
		"--opt", "build-arg:INDEX_URL="+url, "--opt", "build-arg:INDEX_AUTH_SECRET=idx", "--opt", "build-arg:INDEX_USERNAME="+creds.Username,
		"--secret", "id=idx,env=KTRDR_ITEST_INDEX_PASSWORD")
	if err != nil {
		t.Fatalf("buildctl: %v\n%s", err, lastLines(out, 30))
	}
	if strings.Contains(out, creds.Password) {
		t.Error("buildctl's progress output shows the password")
	}
	stmts, manifest, err := inspect.NewRegistry(ref, nil).Attestations(context.Background(), amd64)
	if err != nil {
		t.Fatal(err)
	}
	types := statementsByType(t, ref, stmts)
	for _, s := range stmts {
		if bytes.Contains(s.Raw, []byte(creds.Password)) {
			t.Errorf("the %s attestation holds the password", s.PredicateType)
		}
	}
	st, ok := types[sbom.PredicateType]
	if !ok || types["https://slsa.dev/provenance/v0.2"].Type == "" && types["https://slsa.dev/provenance/v1"].Type == "" {
		t.Fatalf("attestations of %s: %v, want SPDX and provenance", manifest, keys(types))
	}
	var doc sbom.Document
	if err := json.Unmarshal(st.Predicate, &doc); err != nil {
		t.Fatal(err)
	}
	var fromPrivate int
	for _, p := range doc.Packages {
		if strings.Contains(p.SourceInfo, url) {
			fromPrivate++
		}
	}
	t.Logf("buildctl through the frontend: %s attests %v; %d packages from %s", manifest, keys(types), fromPrivate, url)
	if fromPrivate == 0 {
		t.Errorf("no SBOM package names the private index %s", url)
	}
}

// scanInstallerCaches reads the installers' cache mounts where buildkitd
// keeps them, its snapshots on disk (a uv cache is the directory with
// uv's CACHEDIR.TAG, a pip cache the one with pip's http-v2), and looks for
// the password and the token in every file. It returns the files and
// bytes scanned per installer.
func scanInstallerCaches(t *testing.T, w *world.World, secrets [][]byte) map[string][2]int64 {
	t.Helper()
	snaps := filepath.Join(w.BuildkitdRoot(), "runc-overlayfs", "snapshots", "snapshots")
	entries, err := os.ReadDir(snaps)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for _, e := range entries {
		root := filepath.Join(snaps, e.Name(), "fs", "cache")
		kind := ""
		if _, err := os.Stat(filepath.Join(root, "CACHEDIR.TAG")); err == nil {
			kind = "uv"
		} else if _, err := os.Stat(filepath.Join(root, "http-v2")); err == nil {
			kind = "pip"
		} else {
			continue
		}
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			n := out[kind]
			out[kind] = [2]int64{n[0] + 1, n[1] + int64(len(b))}
			for _, s := range secrets {
				if bytes.Contains(b, s) {
					t.Errorf("a credential is in the %s cache: %s", kind, p)
				}
			}
			return nil
		})
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func normalizeName(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "-", ".", "-").Replace(s)
}

// gunzipped returns b decompressed when it is gzip, else b.
func gunzipped(b []byte) []byte {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return b
	}
	return out
}

// TestPrivateIndex builds backend-prod from the world's private index
// (the index behind basic auth) with its credentials given as BuildKit
// secrets: a user name and the token as its password, with uv and with
// pip (each step writes a netrc on its tmpfs), and a netrc file holding the
// user and password. Without credentials and with a wrong password the
// build fails naming the index and the 401, and a secret the client does
// not give is named. Then every layer of the images, their configs and
// history, the index and attestations, the SBOM, a BuildKit cache export
// and the installers' cache mounts are scanned for the password and the
// token.
func TestPrivateIndex(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	url, creds, err := w.PrivateIndex()
	if err != nil {
		t.Fatal(err)
	}
	base := func(ns string, kv ...string) buildArgs {
		o := offline(w, ns)
		kv = append([]string{"index-url", url, "source-date-epoch", epoch}, kv...)
		for i := 0; i < len(kv); i += 2 {
			if err := o.Set(kv[i], kv[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		return buildArgs{dir: example, variants: []string{"backend-prod"}, opts: o, probe: true}
	}
	// The local cache export's content store logs benign retries.
	logrus.SetLevel(logrus.FatalLevel)
	defer logrus.SetLevel(logrus.InfoLevel)
	dir := t.TempDir()
	t.Setenv("KTRDR_ITEST_INDEX_PASSWORD", creds.Password)
	t.Setenv("KTRDR_ITEST_WRONG_PASSWORD", "not-"+creds.Password)
	netrc := filepath.Join(dir, "netrc")
	if err := os.WriteFile(netrc, []byte("machine 127.0.0.1 login "+creds.Username+" password "+creds.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("refused", func(t *testing.T) {
		for name, a := range map[string]buildArgs{
			"no credentials": base("itest-private-none"),
			"wrong password": func() buildArgs {
				a := base("itest-private-wrong", "index-auth-secret", "idx", "index-username", creds.Username)
				a.secrets = []string{"id=idx,env=KTRDR_ITEST_WRONG_PASSWORD"}
				return a
			}(),
		} {
			// Secrets are not part of cache keys (as with a Dockerfile's
			// secret mounts): layers cached from a build with the right
			// credentials would be reused. Solve afresh.
			a.noCache = true
			_, err := runBuild(t, w, a)
			if err == nil {
				t.Errorf("%s: the build succeeded", name)
				continue
			}
			msg := err.Error()
			t.Logf("%s: %s", name, lastLines(msg, 6))
			if !strings.Contains(msg, "the package index "+url+" answered 401 Unauthorized") {
				t.Errorf("%s: the error names neither the 401 nor the index %s:\n%s", name, url, msg)
			}
			if strings.Contains(msg, creds.Password) {
				t.Errorf("%s: the error shows the password", name)
			}
		}
		// A secret the client does not give is named.
		a := base("itest-private-missing", "index-auth-secret", "nosuch")
		a.noCache = true
		if _, err := runBuild(t, w, a); err == nil || !strings.Contains(err.Error(), "nosuch") {
			t.Errorf("missing secret: %v", err)
		}
	})

	cache := filepath.Join(dir, "cache")
	sbomDir := filepath.Join(dir, "sbom")
	var refs []string
	// Every success build must fetch from the private index, not reuse
	// layers cached by an earlier run (secrets are not cache keys). The
	// token builds get a user name of this run, which changes their
	// install steps; the netrc build is solved afresh. (Not all afresh:
	// a no-cache build also gets installer caches of its own, which the
	// scan below could not reach.)
	runUser := fmt.Sprintf("ci-run-%d", time.Now().UnixNano())
	t.Setenv("KTRDR_ITEST_INDEX_TOKEN", creds.Token)
	for _, tc := range []struct {
		name string
		a    buildArgs
	}{
		// First: its no-cache solve makes new cache-mount bases, which the
		// builds after it (and the scan) then reuse.
		{"netrc with user and password", func() buildArgs {
			a := base("itest-private-netrc", "index-auth-secret", "netrc")
			a.secrets = []string{"id=netrc,src=" + netrc}
			a.noCache = true
			return a
		}()},
		{"uv, token as password", func() buildArgs {
			a := base("itest-private-pass", "index-auth-secret", "idx", "index-username", runUser)
			a.secrets = []string{"id=idx,env=KTRDR_ITEST_INDEX_TOKEN"}
			a.exportCache = []string{"type=local,dest=" + cache + ",mode=max"}
			a.sbomOut, a.sbom = sbomDir, true
			return a
		}()},
		{"pip, token as password", func() buildArgs {
			a := base("itest-private-pip", "installer", "pip", "index-auth-secret", "idx", "index-username", runUser)
			a.secrets = []string{"id=idx,env=KTRDR_ITEST_INDEX_TOKEN"}
			return a
		}()},
	} {
		a := tc.a
		a.push = true
		rep, err := runBuild(t, w, a)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ran int
		for _, v := range rep.Vertices.Ran {
			if strings.Contains(v, "pip install") {
				ran++
			}
		}
		t.Logf("%s: %d install steps ran against the private index", tc.name, ran)
		if ran == 0 {
			t.Errorf("%s: no install step ran: the build did not ask the private index", tc.name)
		}
		checkImageProbes(t, rep.Images[0])
		refs = append(refs, rep.Images[0].Ref)
	}

	// The scan. It must be able to find what it looks for: a planted
	// password in a gzip blob is found.
	secrets := [][]byte{[]byte(creds.Password), []byte(creds.Token)}
	found := func(b []byte) bool {
		b = gunzipped(b)
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				return true
			}
		}
		return false
	}
	var planted bytes.Buffer
	zw := gzip.NewWriter(&planted)
	zw.Write([]byte("x password=" + creds.Password + " y"))
	zw.Close()
	if !found(planted.Bytes()) {
		t.Fatal("the scan misses a planted password")
	}
	var scanned, blobs int64
	scan := func(what string, b []byte) {
		b = gunzipped(b)
		blobs++
		scanned += int64(len(b))
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("a credential is in %s", what)
			}
		}
	}
	for _, ref := range refs {
		reg := inspect.NewRegistry(ref, nil)
		_, raw, err := reg.Top(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var all [][]byte
		all = append(all, raw)
		stmts, _, err := reg.Attestations(ctx, amd64)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			all = append(all, s.Raw)
		}
		m, _, err := reg.Manifest(ctx, amd64)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append([]ocispecs.Descriptor{m.Config}, m.Layers...) {
			rc, err := reg.Blob(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b)
		}
		for i, b := range all {
			scan(fmt.Sprintf("%s: blob %d", ref, i), b)
		}
	}
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || p == netrc {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scan(p, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	caches := scanInstallerCaches(t, w, secrets)
	t.Logf("installer caches on buildkitd's disk: %v (files, bytes)", caches)
	if caches["uv"][0] == 0 {
		t.Errorf("no uv cache found under %s: the scan looked in the wrong place", w.BuildkitdRoot())
	}
	if _, err := os.Stat(filepath.Join(sbomDir, "backend-prod.spdx.json")); err != nil {
		t.Errorf("the SBOM was not written: %v", err)
	}
	t.Logf("secret scan: %d blobs and files, %d bytes (uncompressed where gzip), images %v and the cache export: no password, no token", blobs, scanned, refs)
}
