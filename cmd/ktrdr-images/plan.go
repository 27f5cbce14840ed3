package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/spf13/cobra"
)

type planOptions struct {
	contextDir string
	variants   []string
	format     string
	opts       []string
	platform   string
}

func newPlanCommand() *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan [--context DIR] [--variant V]... [--format json|dot|layers] [--opt KEY=VALUE]...",
		Short: "Print the LLB graph of variants, without any buildkitd",
		Long: `Print the LLB graph of one or more variants as JSON (the decoded ops in
definition order, with the image config and the environment layers) or as a
Graphviz digraph in which vertices shared between variants appear once.
Base images are not resolved (no daemon), so their refs are unpinned and the
image config shows only what ktrdr-images sets. The same inputs always give
the same bytes.

Options (--opt KEY=VALUE, repeatable):
` + optionsHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.contextDir, "context", ".", "project directory (the build context)")
	f.StringArrayVar(&o.variants, "variant", nil, "variant to plan (repeatable; default: all of the spec's; KTRDR's are "+strings.Join(variants.Names(), ", ")+")")
	f.StringVar(&o.format, "format", "json", "output format: json, dot (Graphviz) or layers (a table of each image's package layers)")
	f.StringArrayVar(&o.opts, "opt", nil, "option KEY=VALUE (repeatable; see above)")
	f.StringVar(&o.platform, "platform", variants.DefaultPlatform, "target platform: linux/amd64 or linux/arm64")
	return cmd
}

func optionsHelp() string {
	var b strings.Builder
	for _, kv := range variants.OptionKeys() {
		fmt.Fprintf(&b, "  %-18s %s\n", kv[0], kv[1])
	}
	return b.String()
}

// parseOptions applies --platform and --opt flags to the defaults.
func parseOptions(platform string, kvs []string) (variants.Options, error) {
	o := variants.DefaultOptions()
	if strings.Contains(platform, ",") {
		return o, fmt.Errorf("option --platform %q: this command takes one platform at a time: run it once per platform (only build takes a list)", platform)
	}
	o.Platform = platform
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return o, fmt.Errorf("option --opt %q: expected KEY=VALUE", kv)
		}
		if err := o.Set(k, v); err != nil {
			return o, err
		}
	}
	return o, o.Validate()
}

func runPlan(ctx context.Context, w io.Writer, po planOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if po.format != "json" && po.format != "dot" && po.format != "layers" {
		return fmt.Errorf("option --format: %q is not a format; expected json, dot or layers", po.format)
	}
	opts, err := parseOptions(po.platform, po.opts)
	if err != nil {
		return err
	}
	in, err := build.LocalInputs(po.contextDir)
	if err != nil {
		return err
	}
	for _, v := range po.variants {
		if _, err := in.Spec.Lookup(v); err != nil {
			return fmt.Errorf("option --variant: %w", err)
		}
	}
	images, err := variants.Graphs(ctx, in, opts, po.variants)
	if err != nil {
		return err
	}
	plans, err := build.Plans(ctx, images)
	if err != nil {
		return err
	}
	switch po.format {
	case "dot":
		return build.WriteDot(w, plans)
	case "layers":
		return build.WriteLayers(w, plans)
	}
	return build.WriteJSON(w, plans)
}
