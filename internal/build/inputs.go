// Package build is the one build function behind every way ktrdr-images is
// run: the CLI (plan now; build on buildkitd next) and the gateway frontend
// read the project the same way, turn options into the same variants.Graphs
// call and get the same LLB. Only where the context comes from differs: a
// local directory (LocalInputs) or the frontend's main context.
package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

// ContextName is the name of the local source the build context is sent as
// (buildctl's --local context=DIR).
const ContextName = "context"

// LocalInputs reads the project in dir (pyproject.toml, uv.lock and
// .dockerignore) and describes it as the local source ContextName.
func LocalInputs(dir string) (variants.Inputs, error) {
	proj, lock, err := uvlock.LoadProject(dir)
	if err != nil {
		return variants.Inputs{}, err
	}
	excludes, err := readDockerignore(dir)
	if err != nil {
		return variants.Inputs{}, err
	}
	// A stable unique ID (from the directory's absolute path) keeps the
	// definition deterministic and lets buildkitd reuse what it received
	// from the same directory before, as buildx's shared key does.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return variants.Inputs{}, err
	}
	uid := digest.FromString(abs).Encoded()[:24]
	opts := []llb.LocalOption{llb.SharedKeyHint(ContextName), llb.LocalUniqueID(uid), llb.WithCustomName("[context] " + ContextName)}
	if len(excludes) > 0 {
		opts = append(opts, llb.ExcludePatterns(excludes))
	}
	ctxState := llb.Local(ContextName, opts...)
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return variants.Inputs{}, fmt.Errorf("%s: %w", filepath.Join(dir, ".dockerignore"), err)
	}
	exists := func(rel string) (bool, error) {
		rel = filepath.ToSlash(filepath.Clean(rel))
		if excluded, err := pm.MatchesOrParentMatches(rel); err != nil {
			return false, err
		} else if excluded {
			return false, nil
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	}
	return variants.Inputs{
		Project:     proj,
		Lock:        lock,
		Context:     ctxState,
		Exists:      exists,
		ContextName: dir,
	}, nil
}

func readDockerignore(dir string) ([]string, error) {
	p := filepath.Join(dir, ".dockerignore")
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	pats, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	// The dependency files must reach the build whatever the ignore file
	// says; re-include them the way .dockerignore allows.
	return append(pats, "!"+pyproject.FileName, "!"+uvlock.FileName), nil
}
