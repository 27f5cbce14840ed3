package llb

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

var debName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$`)

// ValidatePackages checks Debian package names (optionally name=version).
func ValidatePackages(option string, pkgs []string) error {
	for _, p := range pkgs {
		if !debName.MatchString(p) {
			return fmt.Errorf("%s: %q is not a Debian package name (expected lowercase letters, digits, + - ., optionally =version)", option, p)
		}
	}
	return nil
}

// AptInstall installs Debian packages into st with apt-get, without
// recommends. The package lists and the downloaded .debs live in cache
// mounts, locked and keyed by stage and platform (so the builder's
// toolchain and a runtime's packages, which may run at the same time, do
// not wait for each other's lock), so neither lands in the layer; the logs
// and caches apt and dpkg write with timestamps in them are removed in the
// same step, so the layer holds the installed files only.
func AptInstall(st llb.State, pkgs []string, b Build, stage, name string) llb.State {
	cmd := strings.Join([]string{
		"apt-get update -qq",
		"apt-get install -qq -y --no-install-recommends -o APT::Keep-Downloaded-Packages=true " + shellJoin(pkgs),
		"rm -rf /var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/cache/debconf/*-old /var/lib/dpkg/*-old",
	}, " && ")
	opts := []llb.RunOption{
		shell(cmd),
		llb.AddEnv("DEBIAN_FRONTEND", "noninteractive"),
		llb.AddMount("/var/cache/apt", llb.Scratch(), llb.AsPersistentCacheDir(b.CacheID("apt-cache", stage, b.PlatformKey()), llb.CacheMountLocked)),
		llb.AddMount("/var/lib/apt/lists", llb.Scratch(), llb.AsPersistentCacheDir(b.CacheID("apt-lists", stage, b.PlatformKey()), llb.CacheMountLocked)),
		llb.WithCustomName(name),
	}
	opts = append(opts, b.stepEnv()...)
	return st.Run(opts...).Root()
}
