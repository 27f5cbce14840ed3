package world

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Attach returns the world another process brought up (make world, make
// images, a test binary) without building, starting or repairing
// anything: it checks that buildkitd, the registry, both base images, the uv
// image and the index answer, and fails naming the part that does not (run `make
// world` first). Like Up, it holds the world open until Close, so a
// `ktrdr-world down` or another process's Close leaves it running
// meanwhile. Wheels and Steps stay empty.
func Attach(ctx context.Context, opts Options) (*World, error) {
	dir, err := resolveCacheDir(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	l := newLayout(dir, opts)
	w := &World{
		layout: l, logw: opts.Log, CacheDir: dir, Registry: l.registry,
		BuildkitAddr: "unix://" + l.socket(),
		BuildkitdBin: l.bin("buildkitd"), BuildctlBin: l.bin("buildctl"),
		IndexURL:    "http://" + l.index + "/simple",
		CPUIndexURL: "http://" + l.index + "/whl/cpu",
		UVImage:     l.registry + "/" + uvRepo,
		UVVersion:   UVVersion,
		attached:    true,
	}
	notUp := func(part string, err error) error {
		return fmt.Errorf("the offline world in %s is not up (%s: %v): bring it up with make world", dir, part, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := w.Client(ctx)
	if err != nil {
		return nil, notUp("buildkitd", err)
	}
	_, err = c.ListWorkers(ctx)
	c.Close()
	if err != nil {
		return nil, notUp("buildkitd at "+w.BuildkitAddr, err)
	}
	if ok, why := arm64Registered(); ok {
		w.Emulation = Emulation{Arm64: true}
	} else {
		w.Emulation = Emulation{Why: why}
	}
	rc := newRegistryClient(l.registry)
	for i, r := range baseRecipes() {
		d, err := rc.manifestDigest(ctx, r.Repo, r.Tag)
		if err == nil && d == "" {
			err = fmt.Errorf("no such image")
		}
		ref := l.registry + "/" + r.Repo + ":" + r.Tag
		if err != nil {
			return nil, notUp("base image "+ref, err)
		}
		if i == 0 {
			w.PythonBase, w.PythonBaseDigest = ref, d
			// An index of both platforms (a world with emulation): its
			// manifests by platform.
			if b, err := rc.manifest(ctx, r.Repo, d); err == nil {
				var idx ocispecs.Index
				if json.Unmarshal(b, &idx) == nil && idx.MediaType == ocispecs.MediaTypeImageIndex {
					for _, m := range idx.Manifests {
						if m.Platform == nil {
							continue
						}
						switch m.Platform.Architecture {
						case "amd64":
							w.PythonBaseDigest = m.Digest.String()
						case "arm64":
							w.PythonBaseArm64Digest = m.Digest.String()
						}
					}
				}
			}
		} else {
			w.CUDABase, w.CUDABaseDigest = ref, d
		}
	}
	if d, err := rc.manifestDigest(ctx, uvRepo, UVVersion); err != nil || d == "" {
		if err == nil {
			err = fmt.Errorf("no such image")
		}
		return nil, notUp("uv image "+w.UVImage+":"+UVVersion, err)
	}
	for _, u := range []string{w.IndexURL + "/", w.CPUIndexURL + "/torch/"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: %s", u, resp.Status)
			}
		}
		if err != nil {
			return nil, notUp("index", err)
		}
	}
	users, err := flock(l.path("users.lock"), syscall.LOCK_SH, false)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", l.path("users.lock"), err)
	}
	w.users = users
	w.logf("attached to the running world in %s", dir)
	return w, nil
}
