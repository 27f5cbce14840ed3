package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func sample() Input {
	return Input{
		Image: "127.0.0.1:5000/ktrdr-worker-cpu:dev", Platform: "linux/amd64",
		Project: Project{Name: "ktrdr", Version: "1.0.7", Revision: "0123abcd", Source: "https://example.org/ktrdr", Installed: true},
		Python: []Python{
			{Name: "torch", Version: "2.6.0+cpu", Index: "http://127.0.0.1:8000/cpu/simple", DependsOn: []string{"numpy", "sympy", "filelock", "absent-on-this-platform"}},
			{Name: "numpy", Version: "2.2.4", Index: "http://127.0.0.1:8000/simple", URL: "http://127.0.0.1:8000/files/numpy-2.2.4-cp313-cp313-manylinux_2_28_x86_64.whl", SHA256: strings.Repeat("ab", 32)},
			{Name: "SymPy", Version: "1.13.1", Index: "http://127.0.0.1:8000/simple", SHA256: strings.Repeat("cd", 32), DependsOn: []string{"mpmath"}},
			{Name: "mpmath", Version: "1.3.0", SHA256: strings.Repeat("ef", 32)},
		},
		Debian: []Debian{
			{Name: "libc6", Version: "2.41-12", Arch: "amd64", Source: "glibc"},
			{Name: "libstdc++6", Version: "14.2.0-19", Arch: "amd64", Source: "gcc-14"},
			{Name: "tzdata", Version: "1:2025b-4", Arch: "all"},
		},
		DistroID: "debian", DistroVersion: "13",
		Created: time.Unix(1700000000, 0),
	}
}

func render(t *testing.T, in Input) []byte {
	t.Helper()
	d, err := Make(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValidatesAgainstSchema: every document validates against the SPDX
// 2.3 JSON schema shipped in testdata.
func TestValidatesAgainstSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	f, err := os.Open("testdata/spdx-2.3.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("spdx-2.3.schema.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("spdx-2.3.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	empty := sample()
	empty.Python, empty.Debian, empty.Project = nil, nil, Project{}
	for name, in := range map[string]Input{"sample": sample(), "empty": empty} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(render(t, in)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The schema is strict enough to fail: a package without its
	// required downloadLocation is refused.
	var bad map[string]any
	if err := json.Unmarshal(render(t, sample()), &bad); err != nil {
		t.Fatal(err)
	}
	delete(bad["packages"].([]any)[1].(map[string]any), "downloadLocation")
	if err := sch.Validate(bad); err == nil {
		t.Error("a package without downloadLocation validated")
	}
}

func TestDeterministic(t *testing.T) {
	a := render(t, sample())
	in := sample()
	// Input order does not matter.
	in.Python[0], in.Python[3] = in.Python[3], in.Python[0]
	in.Debian[0], in.Debian[2] = in.Debian[2], in.Debian[0]
	if b := render(t, in); !bytes.Equal(a, b) {
		t.Error("the same packages in another order gave another document")
	}
	in.Created = in.Created.Add(time.Second)
	b := render(t, in)
	if bytes.Equal(a, b) {
		t.Error("another creation time gave the same document")
	}
	var da, db Document
	json.Unmarshal(a, &da)
	json.Unmarshal(b, &db)
	if da.DocumentNamespace == db.DocumentNamespace {
		t.Error("two documents share a namespace")
	}
}

func TestContent(t *testing.T) {
	d, err := Make(sample())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Package{}
	for _, p := range d.Packages {
		byName[p.Name] = p
	}
	for name, want := range map[string]string{
		"torch":      "pkg:pypi/torch@2.6.0%2Bcpu",
		"SymPy":      "pkg:pypi/sympy@1.13.1",
		"ktrdr":      "pkg:pypi/ktrdr@1.0.7",
		"libstdc++6": "pkg:deb/debian/libstdc%2B%2B6@14.2.0-19?arch=amd64&distro=debian-13",
		"tzdata":     "pkg:deb/debian/tzdata@1%3A2025b-4?arch=all&distro=debian-13",
	} {
		p, ok := byName[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if got := p.ExternalRefs[0].ReferenceLocator; got != want {
			t.Errorf("%s purl %s, want %s", name, got, want)
		}
	}
	if n := byName["numpy"]; len(n.Checksums) != 1 || n.Checksums[0].ChecksumValue != strings.Repeat("ab", 32) || !strings.HasSuffix(n.DownloadLocation, ".whl") || !strings.Contains(n.SourceInfo, "127.0.0.1:8000/simple") {
		t.Errorf("numpy: %+v", n)
	}
	if tp := byName["torch"]; len(tp.Checksums) != 0 || !strings.Contains(tp.SourceInfo, "/cpu/simple") {
		t.Errorf("torch (no hash known, its own index): %+v", tp)
	}
	if p := byName["ktrdr"]; p.DownloadLocation != "git+https://example.org/ktrdr.git@0123abcd" || p.PrimaryPackagePurpose != "APPLICATION" {
		t.Errorf("project: %+v", p)
	}
	rel := map[string]bool{}
	for _, r := range d.Relationships {
		rel[r.SPDXElementID+" "+r.RelationshipType+" "+r.RelatedSPDXElement] = true
	}
	id := func(n string) string { return byName[n].SPDXID }
	for _, want := range []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image",
		"SPDXRef-Image CONTAINS " + id("torch"),
		"SPDXRef-Image CONTAINS " + id("libc6"),
		id("torch") + " DEPENDS_ON " + id("numpy"),
		id("torch") + " DEPENDS_ON " + id("SymPy"),
		id("SymPy") + " DEPENDS_ON " + id("mpmath"),
	} {
		if !rel[want] {
			t.Errorf("missing relationship %s", want)
		}
	}
	var deps int
	for k := range rel {
		if strings.Contains(k, "DEPENDS_ON") {
			deps++
		}
	}
	if deps != 3 {
		t.Errorf("%d DEPENDS_ON, want 3 (edges to packages not in the image are left out)", deps)
	}
	got := d.PythonPackages()
	want := map[string]string{"torch": "2.6.0+cpu", "numpy": "2.2.4", "sympy": "1.13.1", "mpmath": "1.3.0", "ktrdr": "1.0.7"}
	if len(got) != len(want) {
		t.Errorf("PythonPackages %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("PythonPackages[%s] = %q, want %q", k, got[k], v)
		}
	}
}

func TestDuplicateIDs(t *testing.T) {
	in := sample()
	in.Debian = append(in.Debian, Debian{Name: "libstdc--6", Version: "14.2.0-19", Arch: "amd64"})
	d, err := Make(in)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range d.Packages {
		if seen[p.SPDXID] {
			t.Errorf("SPDXID %s twice", p.SPDXID)
		}
		seen[p.SPDXID] = true
	}
	if _, err := Make(Input{Image: "x", Python: []Python{{Name: "a"}}}); err == nil {
		t.Error("a distribution without a version was accepted")
	}
}

func TestParseDpkgStatus(t *testing.T) {
	status := `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Source: glibc
Version: 2.41-12
Description: GNU C Library
 Contains the standard libraries.
 .
 More.

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: gcc-14-base
Status: install ok installed
Architecture: amd64
Source: gcc-14 (14.2.0-19)
Version: 14.2.0-19
`
	got, err := ParseDpkgStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	want := []Debian{{"libc6", "2.41-12", "amd64", "glibc"}, {"gcc-14-base", "14.2.0-19", "amd64", "gcc-14"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := ParseDpkgStatus([]byte("Package: x\nno colon here\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad status: %v", err)
	}
	id, v := ParseOSRelease([]byte("PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n"))
	if id != "debian" || v != "13" {
		t.Errorf("os-release: %q %q", id, v)
	}
}

// FuzzParseDpkgStatus: any status file parses or errs with a line number,
// and what parses makes a document that is valid JSON.
func FuzzParseDpkgStatus(f *testing.F) {
	f.Add([]byte("Package: libc6\nStatus: install ok installed\nVersion: 2.41-12\nArchitecture: amd64\n\n"))
	f.Add([]byte(" leading continuation\n"))
	f.Add([]byte("Package: a+b\nStatus: install ok installed\nVersion: 1:2~3\n\nPackage: a-b\nStatus: install ok installed\nVersion: 1:2~3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		debs, err := ParseDpkgStatus(data)
		if err != nil {
			if !strings.Contains(err.Error(), "dpkg status") {
				t.Errorf("error without context: %v", err)
			}
			return
		}
		d, err := Make(Input{Image: "x", Platform: "linux/amd64", Debian: debs})
		if err != nil {
			return
		}
		b, err := d.JSON()
		if err != nil || !json.Valid(b) {
			t.Errorf("invalid JSON from %d packages: %v", len(debs), err)
		}
		seen := map[string]bool{}
		for _, p := range d.Packages {
			if seen[p.SPDXID] {
				t.Errorf("SPDXID %s twice", p.SPDXID)
			}
			seen[p.SPDXID] = true
		}
	})
}
