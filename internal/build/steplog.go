package build

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/distribution/reference"
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
	pushRe       = regexp.MustCompile(`failed to push (\S+?):? `)
	unexpectedRe = regexp.MustCompile(`unexpected status from (\w+) request to (\S+): (\d{3}\b[^:]*)`)
	codeRe       = regexp.MustCompile(`(?i)failed to push \S+?: (unauthorized|denied|toomanyrequests)\b`)
	authRe       = regexp.MustCompile(`(?i)\b(401|403|unauthorized|denied|forbidden)\b`)
	statusRe     = regexp.MustCompile(`\b(401|403)( Unauthorized| Forbidden)?\b`)
	urlRe        = regexp.MustCompile("https?://[^\\s)'\"`<>]+")
)

// Hint says in one line what a failed step's output means when it is a
// package index refusing the installer (HTTP 401 or 403), "" otherwise:
// uv and pip bury that under a resolver's "not found" or a traceback.
func (e *StepError) Hint() string {
	if m := pushRe.FindStringSubmatch(e.Err.Error()); m != nil {
		return e.pushHint(m[1])
	}
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

// registryCodes are the distribution spec's error codes a push can end
// with and the HTTP status each comes with.
var registryCodes = map[string]string{"unauthorized": "401", "denied": "403", "toomanyrequests": "429"}

// pushHint says what the registry answered when an image's push failed:
// BuildKit's own message gives the registry's error text, and the HTTP
// status and the request only in the export's log, under a URL with the
// upload's state in it.
func (e *StepError) pushHint(ref string) string {
	host := ref
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		host = reference.Domain(named)
	}
	var method, path, status string
	retries := 0
	for _, l := range e.Lines {
		retries += strings.Count(l, "retrying in ")
		if m := unexpectedRe.FindStringSubmatch(l); m != nil {
			method, status = m[1], strings.TrimSpace(m[3])
			if u, err := url.Parse(m[2]); err == nil {
				host, path = u.Host, u.Path
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the registry %s refused the push of %s", host, ref)
	if status != "" {
		fmt.Fprintf(&b, ": %s to %s %s", status, method, path)
	} else if m := codeRe.FindStringSubmatch(e.Err.Error()); m != nil {
		// BuildKit gives the registry's error code alone; the
		// distribution spec says which status each is sent with.
		fmt.Fprintf(&b, ": %s (HTTP %s)", m[1], registryCodes[strings.ToLower(m[1])])
	}
	if retries > 0 {
		fmt.Fprintf(&b, " (BuildKit retried %d times)", retries)
	}
	if strings.Contains(path, "/blobs/") {
		b.WriteString("; a layer failed, so no manifest of this image was pushed")
	}
	if authRe.MatchString(status) || (status == "" && authRe.MatchString(e.Err.Error())) {
		fmt.Fprintf(&b, "; the push has no valid credentials for %s: docker login %s (the CLI and buildctl read ~/.docker/config.json)", host, host)
	}
	return b.String()
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
