package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/spf13/cobra"
)

func newTargetsCommand() *cobra.Command {
	var format, contextDir string
	cmd := &cobra.Command{
		Use:   "targets [--context DIR]",
		Short: "List the image variants of a project's spec and what each is for",
		Long: `List the images the project in --context declares in its pyproject.toml's
[tool.ktrdr-images] table; KTRDR's four when it has none, or when the
directory has no pyproject.toml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := loadSpec(contextDir, cmd.Flags().Changed("context"))
			if err != nil {
				return err
			}
			return writeTargets(cmd.OutOrStdout(), spec, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().StringVar(&contextDir, "context", ".", "project directory (its pyproject.toml's [tool.ktrdr-images])")
	return cmd
}

// loadSpec reads the spec of the project in dir, checked against its
// pyproject.toml and uv.lock. Without a pyproject.toml in dir it is KTRDR's
// default spec, unless the directory was named (required).
func loadSpec(dir string, required bool) (*variants.Spec, error) {
	spec, _, err := loadProjectSpec(dir, required)
	return spec, err
}

// loadProjectSpec is loadSpec that also returns the project (nil when the
// spec is the default for want of a pyproject.toml).
func loadProjectSpec(dir string, required bool) (*variants.Spec, *pyproject.Project, error) {
	if _, err := os.Stat(filepath.Join(dir, pyproject.FileName)); err != nil && !required {
		return variants.DefaultSpec(), nil, nil
	}
	proj, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		return nil, nil, err
	}
	spec, err := variants.LoadSpec(proj, lock)
	if err != nil {
		return nil, nil, err
	}
	return spec, proj, nil
}

type targetJSON struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Extras      []string `json:"extras"`
	Groups      []string `json:"groups"`
	Torch       string   `json:"torch"`
}

func writeTargets(w io.Writer, spec *variants.Spec, format string) error {
	all := spec.Variants
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TARGET\tEXTRAS\tGROUPS\tTORCH\tDESCRIPTION")
		for _, v := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, dash(v.Extras), dash(v.Groups), v.Torch, v.Description)
		}
		return tw.Flush()
	case "json":
		out := make([]targetJSON, 0, len(all))
		for _, v := range all {
			out = append(out, targetJSON{v.Name, v.Description, nonNil(v.Extras), nonNil(v.Groups), string(v.Torch)})
		}
		return writeJSON(w, out)
	}
	return fmt.Errorf("option --format: %q is not a format; expected table or json", format)
}

type requirementsOptions struct {
	contextDir   string
	variant      string
	platform     string
	python       string
	cudaFromBase bool
	cpuIndex     string
	format       string
}

func newRequirementsCommand() *cobra.Command {
	var o requirementsOptions
	cmd := &cobra.Command{
		Use:   "requirements --variant V [--context DIR] [--platform linux/amd64] [--python 3.13]",
		Short: "Print the exact pinned package set of a variant, read from uv.lock",
		Long: `Print the packages an image variant installs, one name==version line each,
sorted, as read from the project's uv.lock for one platform and Python
version, with the torch flavour of the variant applied. A package taken from
another index than the default has that index in a trailing comment. The
output is a valid requirements file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRequirements(cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.contextDir, "context", ".", "project directory holding pyproject.toml and uv.lock")
	f.StringVar(&o.variant, "variant", "", "variant to resolve: one of the spec's images (`ktrdr-images targets`); KTRDR's: "+strings.Join(variants.Names(), ", "))
	f.StringVar(&o.platform, "platform", variants.DefaultPlatform, "target platform: linux/amd64 or linux/arm64")
	f.StringVar(&o.python, "python", variants.DefaultPython, "target Python version (X.Y or X.Y.Z)")
	f.BoolVar(&o.cudaFromBase, "cuda-from-base", false, "worker-gpu: the base image provides CUDA, leave the nvidia-* wheels out")
	f.StringVar(&o.cpuIndex, "cpu-index", uvlock.DefaultCPUIndex, "index serving CPU builds of torch")
	f.StringVar(&o.format, "format", "text", "output format: text (a requirements file) or json")
	return cmd
}

type pinJSON struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Index   string   `json:"index,omitempty"`
	Source  string   `json:"source"`
	Hashes  []string `json:"hashes,omitempty"`
}

type requirementsJSON struct {
	Variant      string    `json:"variant"`
	Platform     string    `json:"platform"`
	Python       string    `json:"python"`
	Torch        string    `json:"torch"`
	CUDAFromBase bool      `json:"cuda_from_base"`
	Method       string    `json:"flavour_method"`
	Lock         string    `json:"lock"`
	Packages     []pinJSON `json:"packages"`
	Dropped      []pinJSON `json:"dropped"`
}

func runRequirements(w io.Writer, o requirementsOptions) error {
	if o.format != "text" && o.format != "json" {
		return fmt.Errorf("option --format: %q is not a format; expected text or json", o.format)
	}
	proj, lock, err := uvlock.LoadProject(o.contextDir)
	if err != nil {
		return err
	}
	spec, err := variants.LoadSpec(proj, lock)
	if err != nil {
		return err
	}
	if o.variant == "" {
		return fmt.Errorf("option --variant is required: expected one of %s", strings.Join(spec.Names(), ", "))
	}
	v, err := spec.Lookup(o.variant)
	if err != nil {
		return fmt.Errorf("option --variant: %w", err)
	}
	res, err := v.Pins(proj, lock, variants.Target{
		Platform:     o.platform,
		Python:       o.python,
		CUDAFromBase: o.cudaFromBase,
		CPUIndex:     o.cpuIndex,
	})
	if err != nil {
		return err
	}
	if o.format == "json" {
		out := requirementsJSON{
			Variant: v.Name, Platform: o.platform, Python: o.python,
			Torch: string(res.Flavour.Flavour), CUDAFromBase: res.Flavour.CUDAFromBase,
			Method: res.Flavour.Method, Lock: filepath.ToSlash(lock.Path),
			Packages: pinsJSON(res.Pins), Dropped: pinsJSON(res.Dropped),
		}
		return writeJSON(w, out)
	}
	flavour := string(res.Flavour.Flavour)
	if res.Flavour.Method != "" && res.Flavour.Method != "none" {
		flavour += " (" + res.Flavour.Method + ")"
	}
	if res.Flavour.CUDAFromBase {
		flavour += ", CUDA from the base image"
	}
	fmt.Fprintf(w, "# variant %s: %s, python %s, torch flavour %s\n", v.Name, o.platform, o.python, flavour)
	fmt.Fprintf(w, "# %d packages from %s", len(res.Pins), filepath.ToSlash(lock.Path))
	def := lock.DefaultRegistry()
	if def != "" && def != uvlock.DefaultIndex {
		fmt.Fprintf(w, ", default index %s", def)
	}
	fmt.Fprintln(w)
	for _, p := range res.Pins {
		line := p.Requirement()
		switch {
		case p.Index != "" && p.Index != uvlock.DefaultIndex && p.Index != def:
			line += "  # index: " + p.Index
		case p.Index == "":
			line += "  # source: " + p.Source.String()
		}
		fmt.Fprintln(w, line)
	}
	if len(res.Dropped) > 0 {
		var names []string
		for _, p := range res.Dropped {
			names = append(names, p.Requirement())
		}
		fmt.Fprintf(w, "# left out by the torch flavour (%d): %s\n", len(names), strings.Join(names, " "))
	}
	return nil
}

func pinsJSON(pins []uvlock.Pin) []pinJSON {
	out := make([]pinJSON, 0, len(pins))
	for _, p := range pins {
		out = append(out, pinJSON{Name: p.Name, Version: p.Version, Index: p.Index, Source: p.Source.String(), Hashes: p.Hashes})
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
