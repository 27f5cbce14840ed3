package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/world"
	"github.com/ktrdr/ktrdr-images/internal/build"
	"github.com/moby/buildkit/client"
)

// TestDiskFull (issue 17, drill 4): a buildkitd whose state directory is
// on a nearly full filesystem (loop-mounted ext4, a ballast file leaving
// 300 MiB) runs out of space building backend-prod. The build fails with
// an error naming the daemon, the lack of space and what the lock's
// wheels weigh; the ballast is then removed, as an operator frees room,
// and the same command on the same daemon succeeds with the digest the
// world's daemon gives: nothing the failed build left behind is corrupt.
func TestDiskFull(t *testing.T) {
	w := world.ForTest(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to loop-mount a small filesystem")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs mkfs.ext4 (e2fsprogs)")
	}
	ctx := context.Background()
	a, want := undisturbedProd(t, w, "itest-disk")

	const size, free = 4 << 30, 300 << 20
	disk, err := world.NewSmallDisk(ctx, t.TempDir(), size)
	if err != nil {
		t.Skipf("no loop-mounted filesystem here: %v", err)
	}
	defer func() {
		if err := disk.Close(); err != nil {
			t.Error(err)
		}
	}()
	bk, err := w.StartScratchBuildkitd(ctx, filepath.Join(disk.Dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Stop()
	if err := disk.Fill(free); err != nil {
		t.Fatal(err)
	}

	run := func() (*build.Report, time.Duration, error) {
		c, err := client.New(ctx, bk.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		logf, err := os.Create(filepath.Join(t.TempDir(), "progress.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		start := time.Now()
		rep, err := build.Run(ctx, c, build.RunOptions{ContextDir: example, Variants: a.variants, Options: a.opts,
			Push: true, Inspect: true, Progress: "plain", ProgressOut: logf, Addr: bk.Addr})
		return rep, time.Since(start), err
	}
	_, took, err := run()
	if err == nil {
		t.Fatalf("backend-prod built with %d MiB free: the drill needs less", free>>20)
	}
	t.Logf("with %d MiB free, after %s:\n%v", free>>20, took.Round(time.Second), err)
	var full *build.DiskFullError
	if !errors.As(err, &full) {
		t.Fatalf("not a disk-full error: %v", err)
	}
	if full.Addr != bk.Addr || full.WheelBytes == 0 {
		t.Errorf("the error names %q and %d bytes of wheels", full.Addr, full.WheelBytes)
	}

	if err := disk.Free(); err != nil {
		t.Fatal(err)
	}
	before := disk.Avail()
	rep, took, err := run()
	if err != nil {
		t.Fatalf("after room was freed: %v", err)
	}
	t.Logf("after room was freed: built in %s; the build took %.0f MiB more of the daemon's disk", took.Round(time.Second), float64(before-disk.Avail())/(1<<20))
	if got := rep.Images[0].Digest; got != want {
		t.Errorf("after room was freed backend-prod is %s; the world's daemon gives %s", got, want)
	}
}
