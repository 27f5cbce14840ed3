package build

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gwclient "github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// fakeGateway is a gateway with no daemon behind it, for fuzzing what the
// frontend makes of a request: every solve answers with the example
// project's files, images resolve to an empty amd64 config, containers
// cannot be started. What the frontend does with the request's options
// (target, build args, named contexts, platforms) runs for real, in
// BuildKit's dockerui and in ours.
type fakeGateway struct {
	opts map[string]string
	dir  string
}

var errNoDaemon = errors.New("no daemon behind the fuzz gateway")

func (g *fakeGateway) BuildOpts() gwclient.BuildOpts {
	return gwclient.BuildOpts{Opts: g.opts, LLBCaps: pb.Caps.CapSet(pb.Caps.All()), Caps: gwpb.Caps.CapSet(gwpb.Caps.All())}
}

func (g *fakeGateway) Solve(ctx context.Context, req gwclient.SolveRequest) (*gwclient.Result, error) {
	res := gwclient.NewResult()
	res.SetRef(&fakeRef{dir: g.dir})
	return res, nil
}

const emptyConfig = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"]}}`

func (g *fakeGateway) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, digest.FromString(emptyConfig), []byte(emptyConfig), nil
}

func (g *fakeGateway) ResolveSourceMetadata(ctx context.Context, op *pb.SourceOp, opt sourceresolver.Opt) (*sourceresolver.MetaResponse, error) {
	if strings.HasPrefix(op.Identifier, "docker-image://") {
		return &sourceresolver.MetaResponse{Op: op, Image: &sourceresolver.ResolveImageResponse{Digest: digest.FromString(emptyConfig), Config: []byte(emptyConfig)}}, nil
	}
	return nil, errNoDaemon
}

func (g *fakeGateway) Inputs(ctx context.Context) (map[string]llb.State, error) {
	return map[string]llb.State{}, nil
}

func (g *fakeGateway) NewContainer(ctx context.Context, req gwclient.NewContainerRequest) (gwclient.Container, error) {
	return nil, errNoDaemon
}

func (g *fakeGateway) Warn(ctx context.Context, dgst digest.Digest, msg string, opts gwclient.WarnOpts) error {
	return nil
}

// fakeRef is a solved result that is a directory on disk.
type fakeRef struct{ dir string }

func (r *fakeRef) ToState() (llb.State, error)        { return llb.Scratch(), nil }
func (r *fakeRef) Evaluate(ctx context.Context) error { return nil }

func (r *fakeRef) file(name string) (string, error) {
	clean := path.Clean("/" + name)
	return filepath.Join(r.dir, filepath.FromSlash(clean)), nil
}

func (r *fakeRef) ReadFile(ctx context.Context, req gwclient.ReadRequest) ([]byte, error) {
	p, _ := r.file(req.Filename)
	return os.ReadFile(p)
}

func (r *fakeRef) StatFile(ctx context.Context, req gwclient.StatRequest) (*fstypes.Stat, error) {
	p, _ := r.file(req.Path)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	return stat(req.Path, p, fi), nil
}

// stat is what fsutil sends for a file: the mode bits as os.FileMode has
// them, and a symlink's target.
func stat(name, p string, fi fs.FileInfo) *fstypes.Stat {
	st := &fstypes.Stat{Path: name, Mode: uint32(fi.Mode()), Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		st.Linkname, _ = os.Readlink(p)
	}
	return st
}

func (r *fakeRef) ReadDir(ctx context.Context, req gwclient.ReadDirRequest) ([]*fstypes.Stat, error) {
	p, _ := r.file(req.Path)
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []*fstypes.Stat
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, stat(e.Name(), filepath.Join(p, e.Name()), fi))
	}
	return out, nil
}

// FuzzFrontendRequest: any target, build arg, named context and platform
// a client may send reach an answer or an error, never a panic or a hang;
// an error about the request names what it is about.
func FuzzFrontendRequest(f *testing.F) {
	for _, s := range [][5]string{
		{"backend-prod", "PYTHON_BASE", "127.0.0.1:5000/library/python:3.13-slim", "context:python-base", "docker-image://127.0.0.1:5000/library/python:3.13-slim"},
		{"worker-cpu", "port.worker-cpu", "70000", "context:cuda-base", "oci-layout://sha256:00"},
		{"worker-gpu", "cuda", "base", "context:python-base", "local:nothere"},
		{"", "PROBE", "false", "context:python-base", "input:x"},
		{"worker-tpu", "SOURCE_DATE_EPOCH", "-1", "platform", "linux/s390x"},
		{"backend-dev", "http_proxy", "http://p", "platform", "linux/amd64,linux/arm64/v7,,"},
		{"backend-prod", "requestid", "frontend.targets", "frontend.caps", "moby.buildkit.frontend.subrequests"},
		{"backend-prod", "INDEX_URL", "http://u:p@h/simple", "context:python-base", "https://example.com/x.tar"},
		{"backend-prod", "", "", "context:python-base", "docker-image://" + strings.Repeat("a", 300)},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	dir := filepath.Join("..", "..", "examples", "ktrdr")
	f.Fuzz(func(t *testing.T, target, argKey, argVal, optKey, optVal string) {
		opts := map[string]string{"target": target, "build-arg:PROBE": "false", optKey: optVal}
		if argKey != "" {
			opts["build-arg:"+argKey] = argVal
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := Frontend(ctx, &fakeGateway{opts: opts, dir: dir})
		if ctx.Err() != nil {
			t.Fatalf("the frontend ran 20 s on %v", opts)
		}
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Errorf("an empty error for %v", opts)
		}
	})
}
