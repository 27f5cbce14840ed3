// Package world brings up the offline world that ktrdr-images is built and
// tested against on machines that reach only the Go module proxy, Debian's
// archive and npm.
//
// The world is made of real parts, each standing in for something the
// machines cannot reach:
//
//   - buildkitd and buildctl, built from the BuildKit version pinned in
//     go.mod (tool directives), running the OCI worker with runc and the
//     overlayfs snapshotter, state and socket under the cache directory;
//   - the distribution registry v3 on 127.0.0.1:5000 (stands for Docker Hub);
//   - two base images made with mmdebstrap from Debian trixie and pushed to
//     that registry: 127.0.0.1:5000/library/python:3.13-slim (stands for the
//     official python:3.13-slim) and 127.0.0.1:5000/offline/python-cuda:3.13-trixie
//     (the same plus Debian's CUDA runtime libraries);
//   - a PEP 503 package index on 127.0.0.1:3141 holding Debian trixie's
//     Python packages repacked as wheels by a BuildKit graph (stands for
//     PyPI), with the CUDA torch and its nvidia-* wheels in /simple, as on
//     PyPI, and the CPU build (+cpu) under /whl/cpu, as download.pytorch.org
//     serves it. There is no /whl/cu124: a project that names a cu124 index
//     (examples/signals) points it at /simple.
//
// Up installs what is missing, starts what is not running, builds what is
// not cached (keyed by its inputs) and repairs what it finds broken; a second
// Up on the same machine reuses everything. Everything lives in one cache
// directory ($KTRDR_IMAGES_CACHE, default /var/cache/ktrdr-images).
//
// Tests use Main from TestMain and ForTest in each test that needs the world;
// both skip under -short. The command integration/world/cmd/ktrdr-world
// brings the world up by hand and leaves it running.
package world
