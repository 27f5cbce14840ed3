// Package sbom writes the software bill of materials of one image as an
// SPDX 2.3 JSON document, from what the build knows exactly: the lock's
// pins (name, version, the index and the artifact's sha256 the lock
// records), the project, and the Debian packages the image's own dpkg
// status lists. No scanner runs: BuildKit's default SBOM generator needs
// the docker/buildkit-syft-scanner image, which an air-gapped CI cannot
// pull, and a scanner can only guess what a lock states.
//
// internal/build calls Document after the probes pass and attaches the
// result to the image as an in-toto attestation (predicate type
// https://spdx.dev/Document), as BuildKit attaches its own SBOMs, and
// writes it to --sbom-out. The document is deterministic: the same inputs
// give the same bytes (Created comes from SOURCE_DATE_EPOCH when set).
package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// PredicateType is the in-toto predicate type of an SPDX document, as
// BuildKit's attestations name it.
const PredicateType = "https://spdx.dev/Document"

// Python is one distribution installed in the image.
type Python struct {
	Name, Version string
	// Index is the package index the installer takes it from ("" for a
	// package that is not from an index); LockedIndex, when set, the one
	// the lock names, of which Index is a mirror.
	Index, LockedIndex string
	// URL is the artifact the lock records for the target; SHA256 its
	// hash (hex, "" when the lock records none: a CPU torch from another
	// index than the locked one).
	URL, SHA256 string
	// DependsOn names the image's distributions the lock says it depends on.
	DependsOn []string
}

// Debian is one installed Debian package, as dpkg's status records it.
type Debian struct {
	Name, Version, Arch string
	// Source is the source package ("" when it is Name).
	Source string
}

// Project is the application installed into the image.
type Project struct {
	Name, Version string
	// Revision is the source revision (a git commit) when given; Source
	// the repository's URL.
	Revision, Source string
	// Installed is false when the image only carries the project's code
	// (a development image that mounts it), not its distribution.
	Installed bool
	// DependsOn names the distributions the lock says it depends on.
	DependsOn []string
}

// Input is what one image's SBOM is made from.
type Input struct {
	// Image is the image's name, Platform its "os/arch[/variant]".
	Image, Platform string
	Project         Project
	Python          []Python
	Debian          []Debian
	// Distro is the runtime base's os-release ID and VERSION_ID
	// ("debian", "13"), for the purls' distro qualifier.
	DistroID, DistroVersion string
	// Created is the document's creation time (SOURCE_DATE_EPOCH when
	// set, for a reproducible document).
	Created time.Time
	// Tool names the creator ("ktrdr-images").
	Tool string
}

// Document is an SPDX 2.3 document, the subset of fields written.
type Document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      CreationInfo   `json:"creationInfo"`
	Packages          []Package      `json:"packages"`
	Relationships     []Relationship `json:"relationships"`
}

// CreationInfo is the document's creationInfo.
type CreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// Package is one SPDX package.
type Package struct {
	SPDXID                string        `json:"SPDXID"`
	Name                  string        `json:"name"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	Supplier              string        `json:"supplier,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	Checksums             []Checksum    `json:"checksums,omitempty"`
	SourceInfo            string        `json:"sourceInfo,omitempty"`
	LicenseConcluded      string        `json:"licenseConcluded"`
	LicenseDeclared       string        `json:"licenseDeclared"`
	CopyrightText         string        `json:"copyrightText"`
	ExternalRefs          []ExternalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
	Comment               string        `json:"comment,omitempty"`
}

// Checksum is an SPDX checksum.
type Checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// ExternalRef is an SPDX external reference (here, purls).
type ExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// Relationship is an SPDX relationship.
type Relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// Make builds the document. Packages are sorted (the image, the project,
// then the Python distributions and the Debian packages by name), so the
// same input gives the same document.
func Make(in Input) (*Document, error) {
	if in.Image == "" {
		return nil, fmt.Errorf("sbom: no image name")
	}
	tool := in.Tool
	if tool == "" {
		tool = "ktrdr-images"
	}
	d := &Document{
		SPDXVersion:  "SPDX-2.3",
		DataLicense:  "CC0-1.0",
		SPDXID:       "SPDXRef-DOCUMENT",
		Name:         in.Image + " (" + in.Platform + ")",
		CreationInfo: CreationInfo{Created: in.Created.UTC().Format(time.RFC3339), Creators: []string{"Tool: " + tool}},
	}
	ids := map[string]int{}
	newID := func(kind, name, version string) string {
		id := "SPDXRef-" + kind + "-" + sanitize(name) + "-" + sanitize(version)
		ids[id]++
		if n := ids[id]; n > 1 {
			id = fmt.Sprintf("%s-%d", id, n)
		}
		return id
	}
	image := Package{
		SPDXID: "SPDXRef-Image", Name: in.Image, DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
		PrimaryPackagePurpose: "CONTAINER", Comment: "platform " + in.Platform,
	}
	d.Packages = append(d.Packages, image)
	d.Relationships = append(d.Relationships, Relationship{"SPDXRef-DOCUMENT", "DESCRIBES", image.SPDXID})

	byName := map[string]string{}
	if p := in.Project; p.Name != "" {
		dl := noAssertion
		if p.Source != "" {
			dl = p.Source
			if p.Revision != "" && strings.HasPrefix(p.Source, "https://") {
				dl = "git+" + strings.TrimSuffix(p.Source, ".git") + ".git@" + p.Revision
			}
		}
		pkg := Package{
			SPDXID: newID("Project", p.Name, p.Version), Name: p.Name, VersionInfo: p.Version,
			DownloadLocation: dl, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPackagePurpose: "APPLICATION",
			ExternalRefs:          []ExternalRef{purl(pypiPurl(p.Name, p.Version))},
		}
		if p.Revision != "" {
			pkg.SourceInfo = "source revision " + p.Revision
		}
		if !p.Installed {
			pkg.Comment = "the project's code is in the image; its distribution is not installed"
		}
		d.Packages = append(d.Packages, pkg)
		d.Relationships = append(d.Relationships, Relationship{image.SPDXID, "CONTAINS", pkg.SPDXID})
		if p.Installed {
			byName[normalize(p.Name)] = pkg.SPDXID
		}
	}

	py := append([]Python(nil), in.Python...)
	sort.Slice(py, func(i, j int) bool { return normalize(py[i].Name) < normalize(py[j].Name) })
	for _, p := range py {
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("sbom: a Python distribution without name or version (%q %q)", p.Name, p.Version)
		}
		pkg := Package{
			SPDXID: newID("Package-python", p.Name, p.Version), Name: p.Name, VersionInfo: p.Version,
			DownloadLocation: noAssertion, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPackagePurpose: "LIBRARY",
			ExternalRefs:          []ExternalRef{purl(pypiPurl(p.Name, p.Version))},
		}
		if p.URL != "" {
			pkg.DownloadLocation = p.URL
		}
		if p.Index != "" {
			pkg.SourceInfo = "from the package index " + p.Index
			if p.LockedIndex != "" {
				pkg.SourceInfo += " (locked from " + p.LockedIndex + ")"
			}
		}
		if p.SHA256 != "" {
			pkg.Checksums = []Checksum{{Algorithm: "SHA256", ChecksumValue: p.SHA256}}
		} else if p.Index != "" {
			pkg.Comment = "the lock records no hash for this index's artifact"
		}
		d.Packages = append(d.Packages, pkg)
		d.Relationships = append(d.Relationships, Relationship{image.SPDXID, "CONTAINS", pkg.SPDXID})
		byName[normalize(p.Name)] = pkg.SPDXID
	}
	edges := py
	if in.Project.Installed && in.Project.Name != "" {
		edges = append([]Python{{Name: in.Project.Name, DependsOn: in.Project.DependsOn}}, py...)
	}
	for _, p := range edges {
		from := byName[normalize(p.Name)]
		deps := append([]string(nil), p.DependsOn...)
		sort.Slice(deps, func(i, j int) bool { return normalize(deps[i]) < normalize(deps[j]) })
		seen := map[string]bool{}
		for _, dep := range deps {
			to, ok := byName[normalize(dep)]
			if !ok || seen[to] || to == from {
				continue
			}
			seen[to] = true
			d.Relationships = append(d.Relationships, Relationship{from, "DEPENDS_ON", to})
		}
	}

	debs := append([]Debian(nil), in.Debian...)
	sort.Slice(debs, func(i, j int) bool {
		if debs[i].Name != debs[j].Name {
			return debs[i].Name < debs[j].Name
		}
		return debs[i].Arch < debs[j].Arch
	})
	for _, p := range debs {
		pkg := Package{
			SPDXID: newID("Package-deb", p.Name, p.Version), Name: p.Name, VersionInfo: p.Version,
			Supplier: noAssertion, DownloadLocation: noAssertion, LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPackagePurpose: "LIBRARY",
			ExternalRefs:          []ExternalRef{purl(debPurl(p, in.DistroID, in.DistroVersion))},
		}
		if p.Source != "" && p.Source != p.Name {
			pkg.SourceInfo = "built from the Debian source package " + p.Source
		}
		d.Packages = append(d.Packages, pkg)
		d.Relationships = append(d.Relationships, Relationship{image.SPDXID, "CONTAINS", pkg.SPDXID})
	}

	// The namespace is unique per document content, and reproducible: a
	// hash of the document without it.
	body, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	d.DocumentNamespace = "https://github.com/ktrdr/ktrdr-images/spdx/" + url.PathEscape(sanitize(in.Image)) + "-" + hex.EncodeToString(sum[:16])
	return d, nil
}

// JSON renders the document, indented, with a final newline.
func (d *Document) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// PythonPackages returns the document's Python distributions (the
// project, when installed, included) as name → version, names normalized.
func (d *Document) PythonPackages() map[string]string {
	out := map[string]string{}
	for _, p := range d.Packages {
		for _, r := range p.ExternalRefs {
			if r.ReferenceType == "purl" && strings.HasPrefix(r.ReferenceLocator, "pkg:pypi/") && p.Comment != "the project's code is in the image; its distribution is not installed" {
				out[normalize(p.Name)] = p.VersionInfo
			}
		}
	}
	return out
}

func purl(s string) ExternalRef {
	return ExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: s}
}

// pypiPurl is the purl of a PyPI distribution: the name lower-cased with
// runs of "-", "_", "." as "-" (the purl spec's pypi rule), the version
// percent-encoded ("2.6.0+cpu" → "2.6.0%2Bcpu").
func pypiPurl(name, version string) string {
	return "pkg:pypi/" + normalize(name) + "@" + escape(version)
}

// debPurl is the purl of a Debian package.
func debPurl(p Debian, distroID, distroVersion string) string {
	s := "pkg:deb/debian/" + escape(p.Name) + "@" + escape(p.Version)
	var q []string
	if p.Arch != "" {
		q = append(q, "arch="+escape(p.Arch))
	}
	if distroID != "" && distroVersion != "" {
		q = append(q, "distro="+escape(distroID+"-"+distroVersion))
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// escape percent-encodes all but the unreserved characters of RFC 3986,
// as the purl spec asks of names, versions and qualifier values.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

var runs = regexp.MustCompile(`[-_.]+`)

// normalize is the PEP 503 normal form of a distribution name.
func normalize(name string) string { return runs.ReplaceAllString(strings.ToLower(name), "-") }

var notID = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

// sanitize makes s usable in an SPDX identifier.
func sanitize(s string) string { return notID.ReplaceAllString(s, "-") }
