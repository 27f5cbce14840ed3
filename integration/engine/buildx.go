package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildxVersion is the buildx release installed as the docker CLI plugin,
// the one the client tests run (integration/clients_test.go).
const BuildxVersion = "v0.38.2"

// InstallBuildx makes buildx BuildxVersion the docker CLI's buildx plugin,
// without touching the user's ~/.docker: it builds buildx from the Go
// module proxy into cacheDir/clients/buildx-VERSION/buildx (where the
// client tests put it; reused when there) and links it as
// cli-plugins/docker-buildx in the docker config directory
// cacheDir/clients/docker-config. The returned Docker runs the CLI with
// DOCKER_CONFIG set to that directory, so `docker buildx` works.
func InstallBuildx(ctx context.Context, cacheDir string) (Docker, error) {
	dir := filepath.Join(cacheDir, "clients", "buildx-"+BuildxVersion)
	bin := filepath.Join(dir, "buildx")
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		tmp, err := os.MkdirTemp(filepath.Join(cacheDir), "buildx-install-")
		if err != nil {
			return Docker{}, err
		}
		defer os.RemoveAll(tmp)
		cmd := exec.CommandContext(ctx, "go", "install",
			"-ldflags", "-X github.com/docker/buildx/version.Version="+BuildxVersion,
			"github.com/docker/buildx/cmd/buildx@"+BuildxVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return Docker{}, fmt.Errorf("installing buildx %s from the Go module proxy: %w\n%s", BuildxVersion, err, out)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Docker{}, err
		}
		if err := os.Rename(filepath.Join(tmp, "buildx"), bin); err != nil {
			return Docker{}, err
		}
	}
	cfg := filepath.Join(cacheDir, "clients", "docker-config")
	plugins := filepath.Join(cfg, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return Docker{}, err
	}
	link := filepath.Join(plugins, "docker-buildx")
	if target, err := os.Readlink(link); err != nil || target != bin {
		os.Remove(link)
		if err := os.Symlink(bin, link); err != nil {
			return Docker{}, fmt.Errorf("linking the buildx plugin: %w", err)
		}
	}
	return Docker{Env: []string{"DOCKER_CONFIG=" + cfg}}, nil
}
