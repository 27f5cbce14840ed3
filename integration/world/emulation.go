package world

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Emulation says whether this machine runs linux/arm64 binaries (QEMU user
// emulation registered with binfmt_misc), and why not when it does not.
// buildkitd lists linux/arm64 among its worker's platforms only when it was
// started after the registration; the world restarts it when it was not.
type Emulation struct {
	// Arm64 is true when qemu-aarch64 is registered with the F (fix
	// binary) flag, so that containers without the emulator in their root
	// filesystem run arm64 binaries.
	Arm64 bool
	// Why is the reason when Arm64 is false: what failed and what to do.
	Why string
}

const (
	binfmtDir   = "/proc/sys/fs/binfmt_misc"
	qemuAarch64 = binfmtDir + "/qemu-aarch64"
)

// binfmtEntry reads a binfmt_misc registration: whether it is enabled and
// its flags.
func binfmtEntry(file string) (enabled bool, flags string, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "enabled":
			enabled = true
		case strings.HasPrefix(line, "flags:"):
			flags = strings.TrimSpace(strings.TrimPrefix(line, "flags:"))
		}
	}
	return enabled, flags, nil
}

// arm64Registered reports whether qemu-aarch64 is registered, enabled and
// fixed (F): what buildkitd's emulator detection and runc need.
func arm64Registered() (bool, string) {
	enabled, flags, err := binfmtEntry(qemuAarch64)
	switch {
	case err != nil:
		return false, "qemu-aarch64 is not registered with binfmt_misc (" + qemuAarch64 + " is missing)"
	case !enabled:
		return false, "qemu-aarch64 is registered with binfmt_misc but disabled"
	case !strings.Contains(flags, "F"):
		return false, "qemu-aarch64 is registered without the F flag (flags " + flags + "): containers could not find the emulator"
	}
	return true, ""
}

// ensureEmulation registers QEMU user emulation for linux/arm64 when the
// kernel allows: binfmt_misc mounted (it is not on a new machine), Debian's
// qemu-user-static and binfmt-support installed (their postinst registers
// qemu-aarch64 with flags PF; arch-test, which mmdebstrap needs for a
// foreign root filesystem, beside them), and the registration imported again when
// the package was installed before binfmt_misc was mounted. It never fails
// the world: when emulation cannot be had, Emulation.Why says why, and the
// tests that need arm64 are skipped with that reason.
func ensureEmulation(l layout) (Emulation, string) {
	_, errArchTest := exec.LookPath("arch-test")
	if ok, _ := arm64Registered(); ok && errArchTest == nil {
		// Nothing to do: "reused", as every step a second Up finds done.
		return Emulation{Arm64: true}, "reused"
	}
	aptLog := l.logFile("apt")
	if _, err := os.Stat(binfmtDir + "/register"); err != nil {
		if out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", binfmtDir).CombinedOutput(); err != nil {
			return Emulation{Why: fmt.Sprintf("binfmt_misc cannot be mounted on %s (%v: %s): the kernel or the container this runs in does not allow it; run on a host (or a --privileged container) with binfmt_misc", binfmtDir, err, strings.TrimSpace(string(out)))}, "unavailable"
		}
	}
	// arch-test: mmdebstrap needs it to make a foreign root filesystem.
	_, errQemu := os.Stat("/usr/bin/qemu-aarch64-static")
	if errQemu != nil || errArchTest != nil {
		env := baseEnv("DEBIAN_FRONTEND=noninteractive")
		if err := runLogged(aptLog, "", env, "apt-get", "update"); err != nil {
			return Emulation{Why: "apt-get update failed (" + aptLog + "): " + err.Error()}, "unavailable"
		}
		if err := runLogged(aptLog, "", env, "apt-get", "install", "-y", "--no-install-recommends", "qemu-user-static", "binfmt-support", "arch-test"); err != nil {
			return Emulation{Why: "apt-get install qemu-user-static binfmt-support arch-test failed (" + aptLog + "): " + err.Error()}, "unavailable"
		}
	}
	if ok, _ := arm64Registered(); !ok {
		// Installed while binfmt_misc was not mounted: import the
		// package's registration now.
		if err := runLogged(aptLog, "", baseEnv(), "update-binfmts", "--import", "qemu-aarch64"); err != nil {
			return Emulation{Why: "update-binfmts --import qemu-aarch64 failed (" + aptLog + "): " + err.Error()}, "unavailable"
		}
		runLogged(aptLog, "", baseEnv(), "update-binfmts", "--enable", "qemu-aarch64")
	}
	if ok, why := arm64Registered(); !ok {
		return Emulation{Why: why + " after installing qemu-user-static and binfmt-support (log " + aptLog + ")"}, "unavailable"
	}
	return Emulation{Arm64: true}, "registered now"
}
