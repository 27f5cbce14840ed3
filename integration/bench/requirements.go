package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
)

// WriteRequirements writes, for each variant, DIR/<variant>.txt: the exact
// pinned set ours installs for it, read from the project's uv.lock with the
// variant's torch flavour, as a requirements file. It is the baseline's
// stand-in for `uv sync --frozen` reading uv.lock (which cannot install
// the CPU torch: it is not in the lock), installed with uv pip: the same
// pins, and an --extra-index-url line for each index
// other than the default one (the CPU or CUDA torch index), where KTRDR's
// Dockerfiles inject a [[tool.uv.index]].
func WriteRequirements(project, dir string, o variants.Options) error {
	proj, lock, err := uvlock.LoadProject(project)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("requirements directory: %w", err)
	}
	for _, v := range variants.All() {
		t := variants.Target{
			Platform:     o.Platform,
			Python:       o.Python,
			CUDAFromBase: v.CUDABase && o.CUDABase != "",
			CPUIndex:     o.CPUIndexURL,
			CUDAIndex:    o.CUDAIndexURL,
		}
		res, err := v.Pins(proj, lock, t)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.Name, err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# %s: the pins of %s/uv.lock (generated; stands for uv sync --frozen)\n", v.Name, filepath.Base(project))
		seen := map[string]bool{}
		for _, p := range res.Pins {
			if p.Index != "" && p.Index != uvlock.DefaultIndex && p.Index != lock.DefaultRegistry() && !seen[p.Index] {
				seen[p.Index] = true
				fmt.Fprintf(&b, "--extra-index-url %s\n", p.Index)
			}
		}
		for _, p := range res.Pins {
			fmt.Fprintln(&b, p.Requirement())
		}
		if err := os.WriteFile(filepath.Join(dir, v.Name+".txt"), []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("variant %s: %w", v.Name, err)
		}
	}
	return nil
}
