package world

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// Helpers for the fault drills (integration/faults_test.go): kill the
// world's buildkitd the way a CI runner loses it, and bring it back.

// BuildkitdPID returns the pid of the world's running buildkitd.
func (w *World) BuildkitdPID() (int, error) {
	bk, err := buildkitdService(w.layout, w.Emulation.Arm64)
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
	bk, err := buildkitdService(w.layout, w.Emulation.Arm64)
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

// SmallDisk is a filesystem of a given size, loop-mounted, for drills that
// fill a disk. Close unmounts it and removes its image file.
type SmallDisk struct {
	// Dir is where it is mounted.
	Dir  string
	file string
}

// NewSmallDisk makes an ext4 filesystem of size bytes in a file under dir
// and mounts it at dir/mnt (needs root and a loop device).
func NewSmallDisk(ctx context.Context, dir string, size int64) (*SmallDisk, error) {
	d := &SmallDisk{Dir: filepath.Join(dir, "mnt"), file: filepath.Join(dir, "disk.img")}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.file, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(d.file, size); err != nil {
		return nil, err
	}
	for _, argv := range [][]string{{"mkfs.ext4", "-q", "-F", d.file}, {"mount", "-o", "loop", d.file, d.Dir}} {
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("small disk: %s: %w\n%s", strings.Join(argv, " "), err, out)
		}
	}
	return d, nil
}

// Fill allocates a ballast file so that only free bytes stay free (a
// disk nearly full); Free removes it, as an operator frees room.
func (d *SmallDisk) Fill(free int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.Dir, &st); err != nil {
		return fmt.Errorf("small disk: %w", err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	if avail <= free {
		return nil
	}
	f, err := os.Create(filepath.Join(d.Dir, "ballast"))
	if err != nil {
		return fmt.Errorf("small disk: %w", err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, avail-free); err != nil {
		return fmt.Errorf("small disk: allocating %d bytes of ballast: %w", avail-free, err)
	}
	return nil
}

// Free removes the ballast Fill made.
func (d *SmallDisk) Free() error { return os.Remove(filepath.Join(d.Dir, "ballast")) }

// Avail is the space free on the filesystem.
func (d *SmallDisk) Avail() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.Dir, &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// Close unmounts the filesystem and removes its file.
func (d *SmallDisk) Close() error {
	if out, err := exec.Command("umount", d.Dir).CombinedOutput(); err != nil {
		if out2, err2 := exec.Command("umount", "-l", d.Dir).CombinedOutput(); err2 != nil {
			return fmt.Errorf("small disk: umount %s: %w\n%s%s", d.Dir, err, out, out2)
		}
	}
	return os.Remove(d.file)
}

// ScratchBuildkitd is a second buildkitd of the world's build, with its
// own state directory and socket and the world's registry settings, for
// drills that must not touch the world's daemon and its cache.
type ScratchBuildkitd struct {
	// Addr is its address (unix://...); Root its state directory.
	Addr, Root string
	cmd        *exec.Cmd
	done       chan struct{}
	log        string
}

// StartScratchBuildkitd starts a buildkitd with its state under root and
// waits until it answers.
func (w *World) StartScratchBuildkitd(ctx context.Context, root string) (*ScratchBuildkitd, error) {
	dir := filepath.Dir(root)
	sock := filepath.Join(dir, "buildkitd.sock")
	conf := filepath.Join(dir, "buildkitd.toml")
	text := buildkitdTOML(root, sock, w.layout.registry, false)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	b := &ScratchBuildkitd{Addr: "unix://" + sock, Root: root, done: make(chan struct{}), log: filepath.Join(dir, "buildkitd.log")}
	logf, err := os.Create(b.log)
	if err != nil {
		return nil, err
	}
	b.cmd = exec.Command(w.layout.bin("buildkitd"), "--config", conf)
	b.cmd.Env = baseEnv()
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("scratch buildkitd: %w", err)
	}
	go func() { b.cmd.Wait(); logf.Close(); close(b.done) }()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		select {
		case <-b.done:
			return nil, fmt.Errorf("scratch buildkitd exited at start; its log: %s", b.log)
		default:
		}
		c, err := client.New(ctx, b.Addr)
		if err == nil {
			_, err = c.ListWorkers(ctx)
			c.Close()
			if err == nil {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("scratch buildkitd does not answer at %s after 60s: %w (log %s)", b.Addr, err, b.log)
		}
	}
}

// Stop ends the daemon (SIGTERM, then SIGKILL after 20 s).
func (b *ScratchBuildkitd) Stop() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
}
