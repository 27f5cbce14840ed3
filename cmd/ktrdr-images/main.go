// Command ktrdr-images builds a uv project's container images with
// BuildKit, from Go-built LLB graphs instead of Dockerfiles: the images its
// pyproject.toml declares in [tool.ktrdr-images], KTRDR's four when it
// declares none.
//
// Subcommands:
//
//	ktrdr-images targets                       the images and what each is for
//	ktrdr-images build [--variant V]...        build, probe and export them
//	ktrdr-images requirements --variant V ...  the exact pinned package set of a variant
//	ktrdr-images plan --variant V ...          the LLB graph, without a daemon
//	ktrdr-images bake-file [--output FILE]     a docker-bake.hcl for the spec's images
//
// Errors go to stderr and the exit status is non-zero.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ktrdr-images",
		Short:         "Build KTRDR's container images with BuildKit LLB, without Dockerfiles",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newTargetsCommand(), newRequirementsCommand(), newPlanCommand(), newBuildCommand(), newFrontendImageCommand(), newBakeFileCommand())
	return root
}
