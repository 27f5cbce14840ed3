// Command ktrdr-images builds KTRDR's four container images with BuildKit,
// from Go-built LLB graphs instead of Dockerfiles.
//
// Subcommands so far:
//
//	ktrdr-images targets                       the variants and what each is for
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
