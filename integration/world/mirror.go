package world

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mirror serves the world's index on a second address, as a corporate
// mirror of PyPI would (same pages, same files, another host), and counts
// the requests it answers. A test can make it serve other bytes under a
// wheel's name (Tamper), to see that installers check the lock's hashes.
type Mirror struct {
	// URL is the mirror's default index, http://ADDR/simple; CPUIndexURL
	// its CPU torch index.
	URL, CPUIndexURL string

	dir string
	srv *http.Server
	mu  sync.Mutex
	got map[string]int
	bad map[string][]byte
}

// StartMirror serves the index on addr (127.0.0.1:0 picks a free port)
// until Close.
func (w *World) StartMirror(addr string) (*Mirror, error) {
	dir, err := filepath.EvalSymlinks(w.layout.path("index", "current"))
	if err != nil {
		return nil, fmt.Errorf("the index to mirror: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	m := &Mirror{dir: dir, got: map[string]int{}, bad: map[string][]byte{}}
	m.URL = "http://" + ln.Addr().String() + "/simple"
	m.CPUIndexURL = "http://" + ln.Addr().String() + "/whl/cpu"
	files := indexHandler(dir)
	m.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.got[r.URL.Path]++
		b, tampered := m.bad[path.Base(r.URL.Path)]
		m.mu.Unlock()
		if tampered {
			rw.Header().Set("Content-Type", "application/octet-stream")
			rw.Write(b)
			return
		}
		files.ServeHTTP(rw, r)
	})}
	go m.srv.Serve(ln)
	return m, nil
}

// Tamper makes the mirror serve other bytes under the wheel file's name:
// a valid wheel still (the original's entries, copied as they are, plus one
// more file), so an installer gets as far as checking its hash.
func (m *Mirror) Tamper(file string) error {
	var found string
	filepath.Walk(m.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Name() == file {
			found = p
		}
		return nil
	})
	if found == "" {
		return fmt.Errorf("mirror: no wheel %s in %s", file, m.dir)
	}
	zr, err := zip.OpenReader(found)
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		raw, err := f.OpenRaw()
		if err != nil {
			return err
		}
		w, err := zw.CreateRaw(&f.FileHeader)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, raw); err != nil {
			return err
		}
	}
	w, err := zw.Create("tampered.txt")
	if err != nil {
		return err
	}
	io.WriteString(w, "not the file the lock's hash names\n")
	if err := zw.Close(); err != nil {
		return err
	}
	m.mu.Lock()
	m.bad[file] = buf.Bytes()
	m.mu.Unlock()
	return nil
}

// Requests are the paths the mirror answered, with counts.
func (m *Mirror) Requests() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, v := range m.got {
		out[k] = v
	}
	return out
}

// Reset forgets the requests counted so far.
func (m *Mirror) Reset() {
	m.mu.Lock()
	m.got = map[string]int{}
	m.mu.Unlock()
}

// Wheels are the wheel files it served, sorted.
func (m *Mirror) Wheels() []string {
	var out []string
	for p := range m.Requests() {
		if strings.HasSuffix(p, ".whl") {
			out = append(out, path.Base(p))
		}
	}
	sort.Strings(out)
	return out
}

// Close stops the mirror.
func (m *Mirror) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.srv.Shutdown(ctx)
}
