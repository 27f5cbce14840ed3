package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/python/pep508"
	"github.com/ktrdr/ktrdr-images/variants"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

type frontendImageFlags struct {
	buildFlags
	binary string
	ref    string
	push   bool
}

func newFrontendImageCommand() *cobra.Command {
	var f frontendImageFlags
	cmd := &cobra.Command{
		Use:   "frontend-image (--push REF | --output ...) [--binary PATH]",
		Short: "Build the gateway frontend image (scratch + the static frontend binary) and push it",
		Long: `Build the image that # syntax=, BUILDKIT_SYNTAX and
buildctl --frontend gateway.v0 --opt source=IMAGE run: scratch, the static
frontend binary as /bin/frontend (its entrypoint), and the labels BuildKit's
own frontend image carries (moby.buildkit.frontend.caps, network.none).
Without --binary, cmd/frontend is compiled from this source tree (Go needed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFrontendImage(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	addClientFlags(cmd, &f.buildFlags)
	fl.StringVar(&f.binary, "binary", "", "the static frontend binary (default: compile ./cmd/frontend)")
	fl.StringVar(&f.ref, "push", "", "push the image to this reference")
	fl.StringArrayVar(&f.outputs, "output", nil, "buildctl output instead of or besides --push (repeatable)")
	fl.StringVar(&f.platform, "platform", "linux/amd64,linux/arm64", "platforms of the frontend image, comma-separated (cmd/frontend is cross-compiled for each; one index)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, plain, tty, rawjson or quiet")
	return cmd
}

func runFrontendImage(ctx context.Context, w io.Writer, f frontendImageFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	names, err := variants.ParsePlatforms("--platform", f.platform)
	if err != nil {
		return err
	}
	var plats []ocispecs.Platform
	for _, n := range names {
		p, _ := pep508.ParsePlatform(n) // checked by ParsePlatforms
		plats = append(plats, p)
	}
	if f.binary != "" && len(plats) > 1 {
		return fmt.Errorf("option --binary: one binary is for one platform, and --platform names %d (%s): give --platform too, or leave --binary out to compile each", len(plats), strings.Join(names, ", "))
	}
	if f.ref == "" && len(f.outputs) == 0 {
		return fmt.Errorf("option --push REF (or --output) is required")
	}
	c, addr, err := newClient(ctx, f.buildFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Info(ctx); err != nil {
		return fmt.Errorf("buildkitd at %s is not reachable (set --addr or BUILDKIT_HOST): %w", addr, err)
	}
	var bins []build.FrontendBinary
	if f.binary != "" {
		if _, err := os.Stat(f.binary); err != nil {
			return fmt.Errorf("option --binary: %w", err)
		}
		bins = []build.FrontendBinary{{Platform: plats[0], Path: f.binary}}
	} else {
		modDir, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(modDir)), "go.mod") {
			return fmt.Errorf("option --binary: no frontend binary given and no Go module here to compile cmd/frontend from")
		}
		tmp, err := os.MkdirTemp("", "ktrdr-frontend-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root := strings.TrimSuffix(strings.TrimSpace(string(modDir)), "/go.mod")
		if bins, err = build.CompileFrontends(ctx, root, tmp, plats); err != nil {
			return err
		}
	}
	dgst, err := build.FrontendImage(ctx, c, build.FrontendImageOptions{
		Binaries: bins, Ref: f.ref, Push: f.ref != "", Outputs: f.outputs, Progress: f.progress,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s %s\n", f.ref, dgst)
	return nil
}
