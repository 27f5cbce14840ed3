package llb

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Build holds what every step of one image build shares: the target
// platform, the namespace of cache mount ids, and the SOURCE_DATE_EPOCH.
type Build struct {
	Platform ocispecs.Platform
	// CacheNS prefixes every cache mount id, so two tools sharing a
	// buildkitd do not share caches by accident.
	CacheNS string
	// Epoch is SOURCE_DATE_EPOCH: file timestamps of the ops this package
	// makes, and the env of steps whose tools honour it. Nil leaves
	// timestamps to BuildKit.
	Epoch *time.Time
	// Network is the network mode of every step (pb.NetMode_UNSET: the
	// daemon's default), as a client's --network asks for it: a Docker
	// engine's builder runs steps on its bridge, where an index on the
	// host's 127.0.0.1 needs --network host.
	Network pb.NetMode
}

// PlatformKey is the platform as a cache-id-safe string ("linux-amd64").
func (b Build) PlatformKey() string {
	s := b.Platform.OS + "-" + b.Platform.Architecture
	if b.Platform.Variant != "" {
		s += "-" + b.Platform.Variant
	}
	return s
}

// CacheID names a cache mount: namespace, purpose, then the parts that must
// not share a cache (flavour, platform).
func (b Build) CacheID(parts ...string) string {
	ns := b.CacheNS
	if ns == "" {
		ns = "llb"
	}
	return ns + "/" + strings.Join(parts, "/")
}

func (b Build) stepEnv() []llb.RunOption {
	var opts []llb.RunOption
	if b.Network != pb.NetMode_UNSET {
		opts = append(opts, llb.Network(b.Network))
	}
	if b.Epoch != nil {
		opts = append(opts, llb.AddEnv("SOURCE_DATE_EPOCH", strconv.FormatInt(b.Epoch.Unix(), 10)))
	}
	return opts
}

func (b Build) created() []llb.CopyOption {
	if b.Epoch == nil {
		return nil
	}
	return []llb.CopyOption{llb.WithCreatedTime(*b.Epoch)}
}

// shell runs a command line with sh -c, failing on the first error.
func shell(cmd string) llb.RunOption {
	return llb.Args([]string{"/bin/sh", "-c", "set -eu; " + cmd})
}

// ShellQuote quotes s for sh when it holds anything but safe characters
// (the install steps' command lines, and the command a generated file
// names to remake itself).
func ShellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:+,@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

func isAbs(p string) bool { return path.IsAbs(p) && path.Clean(p) == p }

// checkAbs reports a path option that is not absolute and clean.
func checkAbs(option, p string) error {
	if !isAbs(p) {
		return fmt.Errorf("%s %q: expected an absolute, clean path", option, p)
	}
	return nil
}
