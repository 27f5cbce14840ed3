package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/moby/buildkit/client"
)

// Vertex is one vertex of a build as its progress reported it.
type Vertex struct {
	Name     string
	Cached   bool
	Duration time.Duration
}

// Progress is what the status stream of a build says.
type Progress struct {
	// ContextBytes are the bytes of local sources (build context,
	// Dockerfile, named contexts) sent to buildkitd: per transfer, the last
	// "transferring" count.
	ContextBytes int64
	// Transfers names each transfer and its bytes.
	Transfers map[string]int64
	// Vertices by digest.
	Vertices map[string]*Vertex
}

// Ran returns the vertices that ran (completed, not from the cache), the
// longest first.
func (p *Progress) Ran() []Vertex {
	var out []Vertex
	for _, v := range p.Vertices {
		if !v.Cached && v.Duration > 0 {
			out = append(out, *v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Duration != out[j].Duration {
			return out[i].Duration > out[j].Duration
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Cached counts the vertices that completed from the cache.
func (p *Progress) Cached() int {
	n := 0
	for _, v := range p.Vertices {
		if v.Cached {
			n++
		}
	}
	return n
}

// ReadProgress reads a rawjson progress log (one client.SolveStatus per
// line, as `--progress rawjson` prints it) of a build that started at
// since: a vertex another build ran before (buildkitd reports it with its
// old times) counts from since only.
func ReadProgress(path string, since time.Time) (*Progress, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("progress log: %w", err)
	}
	defer f.Close()
	p := &Progress{Transfers: map[string]int64{}, Vertices: map[string]*Vertex{}}
	type key struct{ vertex, id string }
	transfers := map[key]int64{}
	started := map[string]time.Time{}
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var st client.SolveStatus
		if err := dec.Decode(&st); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("progress log %s: %w", path, err)
		}
		for _, v := range st.Vertexes {
			d := v.Digest.String()
			e := p.Vertices[d]
			if e == nil {
				e = &Vertex{}
				p.Vertices[d] = e
			}
			if e.Name == "" || len(v.Name) < len(e.Name) {
				// The shortest of the (prefixed) names.
				e.Name = v.Name
			}
			if v.Cached {
				e.Cached = true
			}
			if v.Started != nil {
				t := *v.Started
				if t.Before(since) {
					t = since
				}
				if s, ok := started[d]; !ok || t.Before(s) {
					started[d] = t
				}
			}
			if v.Completed != nil {
				if s, ok := started[d]; ok {
					if dur := v.Completed.Sub(s); dur > e.Duration {
						e.Duration = dur
					}
				}
			}
		}
		for _, s := range st.Statuses {
			if s.Name != "transferring" {
				continue
			}
			k := key{s.Vertex.String(), s.ID}
			if s.Current > transfers[k] {
				transfers[k] = s.Current
			}
		}
	}
	for k, n := range transfers {
		p.ContextBytes += n
		p.Transfers[k.id] += n
	}
	return p, nil
}
