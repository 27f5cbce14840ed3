package world

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Helpers for the fault drills (integration/faults_test.go): kill the
// world's buildkitd the way a CI runner loses it, and bring it back.

// BuildkitdPID returns the pid of the world's running buildkitd.
func (w *World) BuildkitdPID() (int, error) {
	bk, err := buildkitdService(w.layout)
	if err != nil {
		return 0, err
	}
	pid, ours := readPID(w.layout, bk)
	if !ours {
		return 0, fmt.Errorf("no buildkitd of this world is running (pid file %s)", w.layout.pidFile(bk.name))
	}
	return pid, nil
}

// KillBuildkitd sends SIGKILL to the world's buildkitd and waits until it
// is gone.
func (w *World) KillBuildkitd() error {
	pid, err := w.BuildkitdPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing buildkitd (pid %d): %w", pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
	}
	return fmt.Errorf("buildkitd (pid %d) still alive 30s after SIGKILL", pid)
}

// RestartBuildkitd starts the world's buildkitd again (as Up does when it
// finds it dead) and waits until it answers.
func (w *World) RestartBuildkitd(ctx context.Context) error {
	bk, err := buildkitdService(w.layout)
	if err != nil {
		return err
	}
	_, err = w.ensureService(ctx, bk)
	return err
}

// BuildkitdRoot is the world's buildkitd state directory (its snapshots
// hold the cache mounts' contents), for scans that must look at what the
// daemon keeps on disk.
func (w *World) BuildkitdRoot() string { return w.layout.path("buildkitd", "root") }
