package build

import (
	"regexp"
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

var (
	statusRe = regexp.MustCompile(`\b(401|403)( Unauthorized| Forbidden)?\b`)
	urlRe    = regexp.MustCompile("https?://[^\\s)'\"`<>]+")
)

// Hint says in one line what a failed step's output means when it is a
// package index refusing the installer (HTTP 401 or 403), "" otherwise:
// uv and pip bury that under a resolver's "not found" or a traceback.
func (e *StepError) Hint() string {
	text := strings.Join(strings.Fields(strings.Join(e.Lines, " ")), " ")
	st := statusRe.FindStringSubmatch(text)
	if st == nil {
		return ""
	}
	status := st[1] + st[2]
	if st[2] == "" {
		status += map[string]string{"401": " Unauthorized", "403": " Forbidden"}[st[1]]
	}
	index := "a package index"
	if u := urlRe.FindString(text); u != "" {
		index = "the package index " + strings.TrimRight(u, ".,;:")
	}
	return index + " answered " + status + ": the install step has no valid credentials for it; give them as a BuildKit secret (--secret id=ID,env=VAR or src=FILE) named by the index-auth-secret option (with index-username for a password or token)"
}

func (e *StepError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if h := e.Hint(); h != "" {
		b.WriteString("\n  " + h)
	}
	if len(e.Lines) > 0 {
		b.WriteString("\n  the step " + e.Step + " printed last:")
		for _, l := range e.Lines {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }
