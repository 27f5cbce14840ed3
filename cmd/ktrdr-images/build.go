package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client"
	"github.com/spf13/cobra"
)

// defaultAddr is buildctl's default daemon address.
const defaultAddr = "unix:///run/buildkit/buildkitd.sock"

type buildFlags struct {
	addr, tlsServerName, tlsCACert, tlsCert, tlsKey string
	contextDir                                      string
	variants                                        []string
	opts                                            []string
	platform                                        string
	push, probe, noCache                            bool
	outputs, importCache, exportCache               []string
	progress                                        string
	report                                          string
	sbom                                            bool
	sbomOut, provenance                             string
	secrets                                         []string
	pushTimeout                                     time.Duration
}

func newBuildCommand() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [--variant V]... [--push] [--opt KEY=VALUE]...",
		Short: "Build variants on buildkitd, probe them and export each under its name",
		Long: `Build the spec's images (all of them by default) together on one buildkitd: one
solve per image, run concurrently, so every vertex the images share is
solved once, and one export per image under its own name. Each image is
probed from the inside (gateway containers, no Docker engine) before it is
exported; an image whose probe fails is never exported. A table of the
images follows; --report writes it as JSON.

The daemon address is --addr, else $BUILDKIT_HOST, else ` + defaultAddr + `.
--output, --import-cache and --export-cache take buildctl's syntax; "{variant}"
in their values becomes the variant's name and "{name}" its image name.

Options (--opt KEY=VALUE, repeatable):
` + optionsHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBuild(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	addClientFlags(cmd, &f)
	fl.StringVar(&f.contextDir, "context", ".", "project directory (the build context)")
	fl.StringArrayVar(&f.variants, "variant", nil, "variant to build (repeatable; default: all of the spec's; KTRDR's are "+strings.Join(variants.Names(), ", ")+")")
	fl.StringArrayVar(&f.opts, "opt", nil, "option KEY=VALUE (repeatable; see above)")
	fl.StringVar(&f.platform, "platform", "", "target platforms, comma-separated: linux/amd64, linux/arm64 or both, one OCI index per image (default: the platform option, linux/amd64)")
	fl.BoolVar(&f.push, "push", false, "push each image to its registry name (see the registry, tag and image.VARIANT options)")
	fl.BoolVar(&f.probe, "probe", true, "probe each image from the inside before exporting it")
	fl.BoolVar(&f.noCache, "no-cache", false, "solve every step again instead of reusing the cache")
	fl.StringArrayVar(&f.outputs, "output", nil, "buildctl output, e.g. type=oci,dest=out/{variant}.tar (repeatable)")
	fl.StringArrayVar(&f.importCache, "import-cache", nil, "buildctl cache import, e.g. type=registry,ref=REG/cache:{variant} (repeatable)")
	fl.StringArrayVar(&f.exportCache, "export-cache", nil, "buildctl cache export, e.g. type=gha,scope={variant},mode=max (repeatable)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, plain, tty, rawjson or quiet")
	fl.StringVar(&f.report, "report", "", "write the report as JSON to this file")
	fl.BoolVar(&f.sbom, "sbom", false, "attach an SPDX 2.3 SBOM, made from the lock and the image's dpkg status, to each image (an in-toto attestation, as buildx --sbom)")
	fl.StringVar(&f.sbomOut, "sbom-out", "", "also write each image's SBOM to DIR/VARIANT.spdx.json")
	fl.StringVar(&f.provenance, "provenance", "", "attach SLSA provenance (BuildKit's): true (mode=min), mode=min or mode=max; false or empty: none")
	fl.DurationVar(&f.pushTimeout, "push-timeout", 0, "cancel an image's push that runs longer than this (e.g. 10m; 0: no bound, as BuildKit, whose registry client has no timeout)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for the install steps, buildctl's syntax: id=ID[,src=FILE|,env=VAR] (repeatable; see index-auth)")
	return cmd
}

// addClientFlags adds buildctl's connection flags.
func addClientFlags(cmd *cobra.Command, f *buildFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "buildkitd address (default $BUILDKIT_HOST or "+defaultAddr+")")
	fl.StringVar(&f.tlsServerName, "tlsservername", "", "buildkitd TLS server name")
	fl.StringVar(&f.tlsCACert, "tlscacert", "", "CA certificate for the buildkitd connection")
	fl.StringVar(&f.tlsCert, "tlscert", "", "client certificate for the buildkitd connection")
	fl.StringVar(&f.tlsKey, "tlskey", "", "client key for the buildkitd connection")
}

func newClient(ctx context.Context, f buildFlags) (*client.Client, string, error) {
	addr := f.addr
	if addr == "" {
		addr = os.Getenv("BUILDKIT_HOST")
	}
	if addr == "" {
		addr = defaultAddr
	}
	var opts []client.ClientOpt
	if f.tlsCACert != "" || f.tlsServerName != "" {
		opts = append(opts, client.WithServerConfig(f.tlsServerName, f.tlsCACert))
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, addr, errors.New("options --tlscert and --tlskey go together")
	}
	if f.tlsCert != "" {
		opts = append(opts, client.WithCredentials(f.tlsCert, f.tlsKey))
	}
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return nil, addr, fmt.Errorf("connecting to buildkitd at %s: %w", addr, err)
	}
	return c, addr, nil
}

func runBuild(ctx context.Context, w io.Writer, f buildFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// The platforms are checked against the spec (which variant supports
	// which) by build.Run; the options get the first.
	var plats []string
	for _, p := range strings.Split(f.platform, ",") {
		if p = strings.TrimSpace(p); p != "" {
			plats = append(plats, p)
		}
	}
	if len(plats) == 0 && strings.TrimSpace(f.platform) != "" {
		return fmt.Errorf("option --platform: %q: expected a platform or a comma-separated list, like linux/amd64,linux/arm64", f.platform)
	}
	opts, err := parseOptions(variants.DefaultPlatform, f.opts)
	if err != nil {
		return err
	}
	switch f.progress {
	case "auto", "plain", "tty", "rawjson", "quiet":
	default:
		return fmt.Errorf("option --progress: %q: expected auto, plain, tty, rawjson or quiet", f.progress)
	}
	provenance, err := build.ParseProvenance(f.provenance)
	if err != nil {
		return fmt.Errorf("option --provenance: %w", err)
	}
	c, addr, err := newClient(ctx, f)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Info(ctx); err != nil {
		return fmt.Errorf("buildkitd at %s is not reachable (set --addr or BUILDKIT_HOST): %w", addr, err)
	}
	rep, runErr := build.Run(ctx, c, build.RunOptions{
		ContextDir:  f.contextDir,
		Variants:    f.variants,
		Options:     opts,
		Platforms:   plats,
		Probe:       f.probe,
		NoCache:     f.noCache,
		Push:        f.push,
		Outputs:     f.outputs,
		ImportCache: f.importCache,
		ExportCache: f.exportCache,
		Progress:    f.progress,
		Inspect:     f.push,
		PushTimeout: f.pushTimeout,
		SBOM:        f.sbom,
		SBOMOut:     f.sbomOut,
		Provenance:  provenance,
		Secrets:     f.secrets,
		Addr:        addr,
	})
	if rep != nil {
		build.WriteTable(w, rep)
		if f.report != "" {
			if err := build.WriteReportFile(f.report, rep); err != nil {
				return fmt.Errorf("option --report: %w", err)
			}
		}
	}
	return runErr
}
