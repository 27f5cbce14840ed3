package build

import (
	"strings"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// stepLog keeps, from one solve's status stream, the last lines each step
// printed and which step failed, so that a failed build's error can say
// what the step itself said (uv's "Hash mismatch for fastapi==…", pip's
// "THESE PACKAGES DO NOT MATCH THE HASHES…") and not only BuildKit's
// "did not complete successfully: exit code: 1".
type stepLog struct {
	names   map[digest.Digest]string
	lines   map[digest.Digest][]string
	partial map[digest.Digest]string
	failed  []digest.Digest
}

// keepLines is how many of a step's last lines an error carries.
const keepLines = 12

func newStepLog() *stepLog {
	return &stepLog{names: map[digest.Digest]string{}, lines: map[digest.Digest][]string{}, partial: map[digest.Digest]string{}}
}

func (s *stepLog) add(st *client.SolveStatus) {
	for _, v := range st.Vertexes {
		if v.Name != "" {
			s.names[v.Digest] = v.Name
		}
		if v.Error != "" && !strings.Contains(v.Error, "context canceled") {
			s.failed = append(s.failed, v.Digest)
		}
	}
	for _, l := range st.Logs {
		text := s.partial[l.Vertex] + string(l.Data)
		parts := strings.Split(text, "\n")
		s.partial[l.Vertex] = parts[len(parts)-1]
		for _, line := range parts[:len(parts)-1] {
			if line = strings.TrimRight(line, "\r "); line == "" {
				continue
			}
			ls := append(s.lines[l.Vertex], line)
			if len(ls) > keepLines {
				ls = ls[len(ls)-keepLines:]
			}
			s.lines[l.Vertex] = ls
		}
	}
}

// explain returns the first failed step's name and last lines, if any.
func (s *stepLog) explain() (string, []string) {
	for _, d := range s.failed {
		lines := s.lines[d]
		if p := strings.TrimSpace(s.partial[d]); p != "" {
			lines = append(lines, p)
		}
		return s.names[d], lines
	}
	return "", nil
}

// StepError is a build step that failed, with what it printed last.
type StepError struct {
	Step  string
	Lines []string
	Err   error
}

func (e *StepError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if len(e.Lines) > 0 {
		b.WriteString("\n  the step " + e.Step + " printed last:")
		for _, l := range e.Lines {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }
