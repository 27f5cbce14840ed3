// Package build is the one build function behind every way ktrdr-images is
// run: the CLI (plan now; build on buildkitd next) and the gateway frontend
// read the project the same way, turn options into the same variants.Graphs
// call and get the same LLB. Only where the context comes from differs: a
// local directory (LocalInputs) or the frontend's main context.
package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ktrdr/ktrdr-images/python/pyproject"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
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
	spec, err := variants.LoadSpec(proj, lock)
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
		ok, err := existsInContext(dir, rel)
		if err != nil || !ok {
			return false, err
		}
		if err := linksOut(dir, rel, pm); err != nil {
			return false, err
		}
		return true, nil
	}
	return variants.Inputs{
		Project:     proj,
		Lock:        lock,
		Spec:        spec,
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

// existsInContext says whether rel is in the context dir as BuildKit will
// see it. The context is sent as it is on disk, symlinks as symlinks, and
// a copy resolves them inside the context: a copied path that is a
// symlink leading out of the context is an error, not a copy of what the
// host has there.
func existsInContext(dir, rel string) (bool, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return true, nil
	}
	target, err := os.Readlink(p)
	if err != nil {
		return false, err
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false, err
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("%s is a symlink to %s, which does not exist", p, target)
	} else if err != nil {
		return false, err
	}
	if r, err := filepath.Rel(root, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(target) {
		return false, linkOutError(p, target, dir)
	}
	return true, nil
}

// linksOut walks a copied path as the context will be sent (what
// .dockerignore excludes left out) and refuses a symlink that points out
// of the context, absolute or climbing: BuildKit sends it as a link, and
// in the build it would name the image's files, not the context's (a
// wheel build following ktrdr/x -> /etc/shadow fails on the image's
// shadow file). Links that stay inside the context are fine.
func linksOut(dir, rel string, pm *patternmatcher.PatternMatcher) error {
	root := filepath.Join(dir, filepath.FromSlash(rel))
	base := dir
	// A copied path that is itself a link (checked to stay inside) is
	// copied as what it points to: walk that.
	if fi, err := os.Lstat(root); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if base, err = filepath.EvalSymlinks(dir); err != nil {
			return err
		}
		if root, err = filepath.EvalSymlinks(root); err != nil {
			return err
		}
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		if p != root {
			if excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(r)); err != nil {
				return err
			} else if excluded {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if leavesContext(filepath.ToSlash(r), filepath.ToSlash(target)) {
			return linkOutError(p, target, dir)
		}
		return nil
	})
}

// leavesContext says whether a symlink at rel (slash-separated, relative
// to the context) with this target points out of the context.
func leavesContext(rel, target string) bool {
	inside := path.Join(path.Dir(rel), target)
	return path.IsAbs(target) || inside == ".." || strings.HasPrefix(inside, "../")
}

func linkOutError(link, target, context string) error {
	return fmt.Errorf("%s is a symlink to %s, outside the build context %s: BuildKit sends the link, and the build would follow it into the image's files, not the context's; copy the files into the context, make the link relative and inside it, or exclude it in .dockerignore", link, target, context)
}

// refLinksOut is linksOut on a context BuildKit holds (the frontend's
// main context, .dockerignore applied): the copied path rel and, for a
// directory, everything under it, read with ReadDir.
func refLinksOut(ctx context.Context, ref gwclient.Reference, rel, contextName string) error {
	st, err := ref.StatFile(ctx, gwclient.StatRequest{Path: rel})
	if err != nil {
		return nil // absent: the caller says so
	}
	if os.FileMode(st.Mode)&os.ModeSymlink != 0 {
		if leavesContext(path.Clean(rel), st.Linkname) {
			return linkOutError(rel, st.Linkname, contextName)
		}
		return nil
	}
	if !os.FileMode(st.Mode).IsDir() {
		return nil
	}
	var walk func(dir string) error
	walk = func(dir string) error {
		ents, err := ref.ReadDir(ctx, gwclient.ReadDirRequest{Path: dir})
		if err != nil {
			return fmt.Errorf("reading %s in %s: %w", dir, contextName, err)
		}
		for _, e := range ents {
			p := path.Join(dir, path.Base(e.Path))
			mode := os.FileMode(e.Mode)
			switch {
			case mode&os.ModeSymlink != 0:
				if leavesContext(p, e.Linkname) {
					return linkOutError(p, e.Linkname, contextName)
				}
			case mode.IsDir():
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(path.Clean(rel))
}
