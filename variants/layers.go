package variants

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	ourllb "github.com/ktrdr/ktrdr-images/llb"
	"github.com/ktrdr/ktrdr-images/python/uvlock"
)

// LayerRule decides how a variant's pins are split into package layers.
//
// The rule reads data, not names: uv.lock records the size of every
// artifact, and the artifact that counts is the one the target installs
// (ArtifactFor: the first compatible wheel, else the sdist).
//   - A pin whose artifact is at least Threshold bytes is alone in its layer,
//     named after it ("torch"). So is a pin the lock records no artifact for
//     because it comes from another index than the locked one (a CPU torch):
//     its size is unknown, and such pins are the accelerated builds.
//   - Every other pin goes to one of Buckets layers ("small 3/8"), chosen by
//     the FNV-1a hash of its normalized name modulo Buckets, so adding,
//     removing or bumping one small package changes one bucket.
//   - An image has at most Budget layers, counting its base's and the fixed
//     ones (user, runtime packages, venv, project). When the heavy pins
//     would exceed it, the smallest of them join their buckets, one by one,
//     until it fits; when even the buckets do not fit, it is an error.
//
// A layer's pins are installed with --no-deps into the same empty venv, so
// its content depends only on those pins, the platform, the Python, the
// venv path and the app user: the same pins in two variants are one layer.
type LayerRule struct {
	Threshold int64
	Buckets   int
	Budget    int
}

// PackageLayer is one package layer of a variant.
type PackageLayer struct {
	// Name is the pin's name for a heavy pin, "small I/N" for a bucket.
	Name string
	// Pins are sorted by name.
	Pins []uvlock.Pin
	// Size sums the lock's sizes of the pins' artifacts for the target.
	Size int64
	// Unsized are the pins whose size the lock does not record.
	Unsized []string
	// Build lists the pins that have only an sdist for the target: the
	// layer is built on the toolchain (in toolchain-mode auto).
	Build []string
	// Alone is true for a heavy pin's own layer.
	Alone bool
}

// bucketOf is the bucket of a small package: FNV-1a of its normalized name.
func bucketOf(name string, buckets int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(buckets))
}

// AssignLayers splits res's pins into package layers by rule, for CPython
// python on platform_machine machine. fixed counts the image's other
// layers (its base's and the fixed ones), for the budget.
func AssignLayers(variant string, res *uvlock.Resolution, python, machine string, rule LayerRule, fixed int) ([]PackageLayer, error) {
	if rule.Buckets < 1 {
		return nil, fmt.Errorf("variant %s: option layer-buckets=%d: expected at least 1", variant, rule.Buckets)
	}
	type sized struct {
		pin     uvlock.Pin
		size    int64
		known   bool
		build   bool
		heavy   bool
		foreign bool
	}
	all := make([]*sized, 0, len(res.Pins))
	for _, p := range res.Pins {
		s := &sized{pin: p}
		if c, ok := uvlock.ArtifactFor(p, python, machine); ok {
			s.size, s.known, s.build = c.Size, c.Size > 0, c.Build
		} else if p.Index != "" && p.Index != p.Source.Registry {
			s.foreign = true
		}
		s.heavy = s.foreign || (s.known && s.size >= rule.Threshold)
		all = append(all, s)
	}
	count := func() int {
		n, used := fixed, map[int]bool{}
		for _, s := range all {
			if s.heavy {
				n++
			} else {
				used[bucketOf(s.pin.Name, rule.Buckets)] = true
			}
		}
		return n + len(used)
	}
	for count() > rule.Budget {
		// The smallest heavy pin joins its bucket; pins of unknown size
		// from another index go last.
		var pick *sized
		for _, s := range all {
			if !s.heavy {
				continue
			}
			if pick == nil || less(s.foreign, s.size, s.pin.Name, pick.foreign, pick.size, pick.pin.Name) {
				pick = s
			}
		}
		if pick == nil {
			return nil, fmt.Errorf("variant %s: option layer-budget=%d: the image needs at least %d layers (%d of its base and fixed ones, and %d buckets of option layer-buckets); raise layer-budget or lower layer-buckets", variant, rule.Budget, count(), fixed, count()-fixed)
		}
		pick.heavy = false
	}

	var heavy []PackageLayer
	buckets := map[int]*PackageLayer{}
	for _, s := range all {
		var l *PackageLayer
		if s.heavy {
			heavy = append(heavy, PackageLayer{Name: s.pin.Name, Alone: true})
			l = &heavy[len(heavy)-1]
		} else {
			b := bucketOf(s.pin.Name, rule.Buckets)
			if buckets[b] == nil {
				buckets[b] = &PackageLayer{Name: fmt.Sprintf("small %d/%d", b+1, rule.Buckets)}
			}
			l = buckets[b]
		}
		l.Pins = append(l.Pins, s.pin)
		l.Size += s.size
		if !s.known {
			l.Unsized = append(l.Unsized, s.pin.Name)
		}
		if s.build {
			l.Build = append(l.Build, s.pin.Name)
		}
	}
	out := heavy
	var keys []int
	for b := range buckets {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	for _, b := range keys {
		out = append(out, *buckets[b])
	}
	return out, nil
}

// less orders heavy pins for demotion: known sizes before unknown ones,
// then smaller first, then by name.
func less(aForeign bool, aSize int64, aName string, bForeign bool, bSize int64, bName string) bool {
	if aForeign != bForeign {
		return !aForeign
	}
	if aSize != bSize {
		return aSize < bSize
	}
	return aName < bName
}

// llbLayer turns a package layer into what an installer installs: each
// pin by version with its hashes, from the installer's default index when
// it is the lock's (the index-url option, a mirror, replaces it), else
// from the index it names (a CPU torch).
func llbLayer(pl PackageLayer, t Target, toolchain bool) ourllb.Layer {
	l := ourllb.Layer{Name: pl.Name, Toolchain: toolchain}
	for _, p := range pl.Pins {
		r := ourllb.Requirement{Name: p.Name, Version: p.Version, Hashes: p.Hashes}
		if p.Index != "" && p.Index != uvlock.DefaultIndex && p.Index != t.LockIndex {
			r.Index = p.Index
		}
		l.Requirements = append(l.Requirements, r)
	}
	return l
}

// Describe is a package layer in one line: "torch 2.6.0+cpu (index ...)"
// or "small 3/8: anyio 4.8.0, idna 3.10".
func (pl PackageLayer) Describe() string {
	var names []string
	for _, p := range pl.Pins {
		names = append(names, p.Name+" "+p.Version)
	}
	if pl.Alone {
		return strings.Join(names, ", ")
	}
	return pl.Name + ": " + strings.Join(names, ", ")
}
