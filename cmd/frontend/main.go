// Command frontend is ktrdr-images as a BuildKit gateway frontend: the
// binary of the frontend image that `# syntax=`, BUILDKIT_SYNTAX and
// `buildctl --frontend gateway.v0 --opt source=IMAGE` run. It serves
// internal/build.Frontend, the same build function as the CLI, over the
// gateway API of the buildkitd that started it.
package main

import (
	"fmt"
	"os"

	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/moby/buildkit/util/appcontext"
)

func main() {
	if err := grpcclient.RunFromEnvironment(appcontext.Context(), build.Frontend); err != nil {
		fmt.Fprintln(os.Stderr, "ktrdr-images frontend:", err)
		os.Exit(1)
	}
}
