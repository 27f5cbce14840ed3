package world

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
)

// Default endpoints of the world. The registry address is part of the base
// image names (127.0.0.1:5000/library/python:3.13-slim).
const (
	RegistryAddr = "127.0.0.1:5000"
	// IndexAddr is where the package index is served (3141 is devpi's port,
	// a PyPI stand-in's usual home).
	IndexAddr = "127.0.0.1:3141"
)

// buildkitdTOML is the world's buildkitd configuration: state under root,
// socket sock, plain HTTP to the registry. gc keeps the cache within the
// world's limits; without it the daemon keeps everything (a drill's
// scratch daemon, whose disk the drill fills on purpose).
func buildkitdTOML(root, sock, registry string, gc bool) string {
	gcText := `  gc = false`
	if gc {
		gcText = `  gc = true
  # The world's wheelhouse and CUDA layers are large: keep them cached, but
  # leave the disk room (the registry's store grows beside it).
  reservedSpace = "10GB"
  maxUsedSpace = "40GB"
  minFreeSpace = "15GB"`
	}
	return fmt.Sprintf(`# Written by ktrdr-images' integration/world; rewritten on every start.
root = %q
insecure-entitlements = ["network.host"]

[log]
  format = "text"

[grpc]
  address = ["unix://%s"]

[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  binary = "runc"
%s

[worker.containerd]
  enabled = false

[registry.%q]
  http = true
  insecure = true
`, root, sock, gcText, registry)
}

// buildkitdService is the world's buildkitd. With arm64, a daemon whose
// workers do not list linux/arm64 (started before QEMU was registered) is
// not healthy, so ensureService restarts it.
func buildkitdService(l layout, arm64 bool) (*service, error) {
	conf := l.path("buildkitd", "buildkitd.toml")
	text := buildkitdTOML(l.path("buildkitd", "root"), l.socket(), l.registry, true)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	sock := l.socket()
	return &service{
		name:     "buildkitd",
		argv:     []string{l.bin("buildkitd"), "--config", conf},
		env:      baseEnv(),
		marker:   conf,
		endpoint: sock,
		inUse:    inUse("unix", sock),
		healthy: func(ctx context.Context) error {
			c, err := client.New(ctx, "unix://"+sock)
			if err != nil {
				return err
			}
			defer c.Close()
			ws, err := c.ListWorkers(ctx)
			if err != nil {
				return err
			}
			if len(ws) == 0 {
				return fmt.Errorf("buildkitd has no worker")
			}
			if arm64 {
				for _, w := range ws {
					for _, p := range w.Platforms {
						if p.OS == "linux" && p.Architecture == "arm64" {
							return nil
						}
					}
				}
				return fmt.Errorf("buildkitd's workers do not list linux/arm64: it was started before QEMU was registered")
			}
			return nil
		},
		cleanup: func() { os.Remove(sock) },
	}, nil
}

func registryService(l layout) (*service, error) {
	conf := l.path("registry", "config.yml")
	text := fmt.Sprintf(`# Written by ktrdr-images' integration/world; rewritten on every start.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, l.path("registry", "data"), l.registry)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return &service{
		name:     "registry",
		argv:     []string{l.bin("registry"), "serve", conf},
		env:      baseEnv("OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true"),
		marker:   conf,
		endpoint: l.registry,
		inUse:    inUse("tcp", l.registry),
		healthy: func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.registry+"/v2/", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Docker-Distribution-Api-Version"), "registry/2") {
				return fmt.Errorf("GET /v2/ answered %s without the registry/2.0 header", resp.Status)
			}
			return nil
		},
	}, nil
}

// indexHealthPath answers with indexHealthPrefix and the served directory.
const (
	indexHealthPath   = "/-/ktrdr-world"
	indexHealthPrefix = "ktrdr-world index server: "
)

func indexService(l layout) *service {
	dir := l.path("index", "current")
	return &service{
		name: "index",
		argv: []string{l.bin("ktrdr-world"), "serve-index", "--addr", l.index, "--dir", dir,
			"--private-addr", l.privateIndex(), "--private-credentials", l.privateCredentialsFile()},
		env:      baseEnv(),
		marker:   dir,
		endpoint: l.index,
		inUse:    inUse("tcp", l.index),
		healthy: func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.index+indexHealthPath, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != indexHealthPrefix+dir {
				return fmt.Errorf("%s answered %s %q, not the index server of %s", l.index, resp.Status, b, dir)
			}
			return privateHealthy(ctx, l)
		},
	}
}

// indexHandler serves an index directory: the HTML pages (PEP 503), their
// JSON form (PEP 691) to a client whose Accept header asks for it, and the
// wheels.
func indexHandler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".whl") {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		if strings.HasSuffix(r.URL.Path, "/") && strings.Contains(r.Header.Get("Accept"), jsonSimpleType) {
			p := filepath.Join(dir, filepath.FromSlash(path.Clean(r.URL.Path)), SimpleJSONFile)
			if b, err := os.ReadFile(p); err == nil {
				w.Header().Set("Content-Type", jsonSimpleType)
				w.Write(b)
				return
			}
		}
		files.ServeHTTP(w, r)
	})
}

const jsonSimpleType = "application/vnd.pypi.simple.v1+json"

// ServeIndex serves a package index directory (PEP 503 pages and wheels, as
// Up writes them) over HTTP until ctx is done. The command
// `ktrdr-world serve-index` runs it, so that the index outlives the process
// that brought the world up.
//
// With privateAddr set it serves the same index there too, behind basic
// auth with the credentials in the JSON file credsFile (the private index).
func ServeIndex(ctx context.Context, addr, dir, privateAddr, credsFile string) error {
	mux := http.NewServeMux()
	mux.HandleFunc(indexHealthPath, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, indexHealthPrefix+dir)
	})
	mux.Handle("/", indexHandler(dir))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("index server: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if privateAddr != "" {
		b, err := os.ReadFile(credsFile)
		if err != nil {
			return fmt.Errorf("private index: %w", err)
		}
		var c PrivateCredentials
		if err := json.Unmarshal(b, &c); err != nil || c.Password == "" || c.Token == "" {
			return fmt.Errorf("private index: %s: expected JSON with username, password and token (%v)", credsFile, err)
		}
		pln, err := net.Listen("tcp", privateAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("private index server: %w", err)
		}
		psrv := &http.Server{Handler: requireAuth(c, indexHandler(dir)), ReadHeaderTimeout: 10 * time.Second}
		go psrv.Serve(pln)
		defer psrv.Close()
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("index server: %w", err)
	}
	return nil
}
