package build

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/internal/sbom"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/result"
)

// SBOMPath is the SBOM's file in the attestation's filesystem.
const SBOMPath = "/ktrdr-images.spdx.json"

// makeSBOM writes the SPDX document of a built image: its Python
// distributions from the resolved pins (the artifact and hash the lock
// records for the target), the project, and the Debian packages its own
// dpkg status lists, read from ref.
func makeSBOM(ctx context.Context, ref gwclient.Reference, img variants.Image, o variants.Options, in variants.Inputs) ([]byte, error) {
	status, err := ref.ReadFile(ctx, gwclient.ReadRequest{Filename: "/var/lib/dpkg/status"})
	if err != nil {
		return nil, fmt.Errorf("reading the image's /var/lib/dpkg/status: %w", err)
	}
	debs, err := sbom.ParseDpkgStatus(status)
	if err != nil {
		return nil, fmt.Errorf("the image's /var/lib/dpkg/status: %w", err)
	}
	var distroID, distroVersion string
	for _, f := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if b, err := ref.ReadFile(ctx, gwclient.ReadRequest{Filename: f}); err == nil {
			distroID, distroVersion = sbom.ParseOSRelease(b)
			break
		}
	}
	created := time.Now()
	if o.SourceDateEpoch != nil {
		created = *o.SourceDateEpoch
	}
	sin := sbom.Input{
		Image: img.Name, Platform: platforms.Format(img.Platform),
		Debian: debs, DistroID: distroID, DistroVersion: distroVersion,
		Created: created, Tool: "ktrdr-images",
	}
	if in.Project != nil {
		sin.Project = sbom.Project{
			Name: in.Project.Name, Version: in.Project.Version,
			Revision: o.Revision, Source: o.SourceURL(in.Project),
			Installed: img.Variant.InstallProject,
		}
	}
	if img.Pins != nil {
		env, err := pep508.EnvironmentFor(img.Platform, o.Python)
		if err != nil {
			return nil, err
		}
		// The installers take the lock's default registry's pins from
		// the index-url option when it is set (a mirror, a private index).
		lockIndex := ""
		if in.Lock != nil {
			lockIndex = in.Lock.DefaultRegistry()
		}
		for _, p := range img.Pins.Pins {
			sp := sbom.Python{Name: p.Name, Version: p.Version, Index: p.Index}
			if o.IndexURL != "" && p.Index == lockIndex && o.IndexURL != lockIndex {
				sp.Index, sp.LockedIndex = o.IndexURL, lockIndex
			}
			if c, ok := uvlock.ArtifactFor(p, env.PythonVersion, env.PlatformMachine); ok {
				sp.URL = c.URL
				if h, ok := strings.CutPrefix(c.Hash, "sha256:"); ok {
					sp.SHA256 = h
				}
			}
			if p.Package != nil {
				for _, d := range p.Package.Dependencies {
					sp.DependsOn = append(sp.DependsOn, d.Name)
				}
			}
			sin.Python = append(sin.Python, sp)
		}
		if img.Variant.InstallProject && img.Pins.Root != nil {
			for _, d := range img.Pins.Root.Dependencies {
				sin.Project.DependsOn = append(sin.Project.DependsOn, d.Name)
			}
		}
	}
	doc, err := sbom.Make(sin)
	if err != nil {
		return nil, err
	}
	return doc.JSON()
}

// sbomAttestation puts the document in a filesystem of its own and
// returns the in-toto attestation BuildKit's exporter writes into the
// image's attestation manifest.
func sbomAttestation(ctx context.Context, gw gwclient.Client, data []byte, epoch *time.Time) (gwclient.Attestation, error) {
	var opts []llb.MkfileOption
	if epoch != nil {
		opts = append(opts, llb.WithCreatedTime(*epoch))
	}
	st := llb.Scratch().File(llb.Mkfile(path.Base(SBOMPath), 0o444, data, opts...), llb.WithCustomName("[sbom] SPDX document from the lock and dpkg status"))
	def, err := st.Marshal(ctx)
	if err != nil {
		return gwclient.Attestation{}, err
	}
	res, err := gw.Solve(ctx, gwclient.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	if err != nil {
		return gwclient.Attestation{}, fmt.Errorf("writing the SBOM: %w", err)
	}
	ref, err := res.SingleRef()
	if err != nil {
		return gwclient.Attestation{}, err
	}
	return gwclient.Attestation{
		Kind: gatewaypb.AttestationKind_InToto,
		Ref:  ref, Path: SBOMPath,
		InToto: result.InTotoAttestation{PredicateType: sbom.PredicateType},
	}, nil
}
