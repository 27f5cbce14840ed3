package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktrdr/ktrdr-images/internal/bakefile"
	ourllb "github.com/ktrdr/ktrdr-images/llb"
	"github.com/spf13/cobra"
)

func newBakeFileCommand() *cobra.Command {
	var contextDir, output string
	cmd := &cobra.Command{
		Use:   "bake-file [--context DIR] [--output FILE|-]",
		Short: "Write a docker-bake.hcl with a target per image of a project's spec",
		Long: `Write a docker buildx bake file for the images the project in --context
declares in its pyproject.toml's [tool.ktrdr-images] table (KTRDR's four when
it has none, or when the directory has no pyproject.toml and --context is not
given): a default group of every image in the spec's order, and a target per
image built by the ktrdr-images frontend (BUILDKIT_SYNTAX, no Dockerfile).

Each target's tag is "${REGISTRY}/" and the image's name, with TAG for a
latest or missing tag (for every tag when the spec sets tag); REGISTRY and
TAG default to the spec's registry and tag settings. With those defaults
each tag is the name "ktrdr-images build --push --opt registry=REGISTRY"
pushes. Unlike --opt tag, which replaces every image's tag, TAG replaces
only latest or missing ones when the spec sets no tag (KTRDR's
ktrdr-backend:dev and :prod would otherwise get one name). Images
with torch = "cuda" are linux/amd64 only. CONTEXT defaults to --context
relative to the output file's directory (the current one for stdout). The
same spec always gives the same bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBakeFile(cmd.OutOrStdout(), contextDir, cmd.Flags().Changed("context"), output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&contextDir, "context", ".", "project directory (its pyproject.toml's [tool.ktrdr-images]); the file's CONTEXT")
	f.StringVar(&output, "output", "-", "file to write, or - for stdout")
	return cmd
}

func runBakeFile(w io.Writer, contextDir string, contextGiven bool, output string) error {
	if output == "" {
		return fmt.Errorf("option --output: expected a file name, or - for stdout")
	}
	spec, proj, err := loadProjectSpec(contextDir, contextGiven)
	if err != nil {
		return err
	}
	ctx, err := bakeContext(contextDir, output)
	if err != nil {
		return err
	}
	name := "docker-bake.hcl"
	if output != "-" {
		name = filepath.Base(output)
	}
	command := []string{"ktrdr-images", "bake-file"}
	if contextGiven {
		command = append(command, "--context", ourllb.ShellQuote(ctx))
	}
	command = append(command, "--output", ourllb.ShellQuote(name))
	p := bakefile.Params{Spec: spec, Context: ctx, Command: strings.Join(command, " ")}
	if proj != nil {
		p.Project = proj.Name
	}
	data, err := bakefile.Generate(p)
	if err != nil {
		return err
	}
	if output == "-" {
		_, err := w.Write(data)
		return err
	}
	if err := os.WriteFile(output, data, 0o644); err != nil {
		return fmt.Errorf("option --output: %w", err)
	}
	return nil
}

// bakeContext is the CONTEXT a bake file written to output gets: the
// context directory relative to the output file's directory (the current
// one for stdout), where bake is run; an absolute --context stays absolute.
func bakeContext(contextDir, output string) (string, error) {
	if filepath.IsAbs(contextDir) {
		return filepath.ToSlash(filepath.Clean(contextDir)), nil
	}
	base := "."
	if output != "-" {
		base = filepath.Dir(output)
	}
	absCtx, err := filepath.Abs(contextDir)
	if err != nil {
		return "", fmt.Errorf("option --context: %w", err)
	}
	absBase, err := filepath.Abs(base)
	if err != nil {
		return "", fmt.Errorf("option --output: %w", err)
	}
	rel, err := filepath.Rel(absBase, absCtx)
	if err != nil {
		return "", fmt.Errorf("option --context: %s is not reachable from %s, the output's directory: %w", contextDir, base, err)
	}
	return filepath.ToSlash(rel), nil
}
