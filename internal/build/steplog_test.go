package build

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestStepLogExplains(t *testing.T) {
	s := newStepLog()
	a, b := digest.FromString("a"), digest.FromString("b")
	s.add(&client.SolveStatus{
		Vertexes: []*client.Vertex{{Digest: a, Name: "[builder] uv sync layer deps"}, {Digest: b, Name: "[runtime] apt-get install tini curl"}},
	})
	s.add(&client.SolveStatus{Logs: []*client.VertexLog{
		{Vertex: a, Data: []byte("Downloading fastapi\nerror: Failed to download `fastapi==0.115.11`\n  Caused by: Hash mismatch for `fastapi==0.115.11`\n")},
		{Vertex: a, Data: []byte("Expected: sha256:aa")},
		{Vertex: b, Data: []byte("Setting up tini\n")},
	}})
	s.add(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: b, Error: "context canceled"},
		{Digest: a, Error: "process did not complete successfully: exit code: 1"},
	}})
	step, lines := s.explain()
	if step != "[builder] uv sync layer deps" || len(lines) != 4 || lines[3] != "Expected: sha256:aa" {
		t.Fatalf("explain: %q %q", step, lines)
	}
	base := errors.New("variant backend-prod: failed to solve: exit code: 1")
	err := &StepError{Step: step, Lines: lines, Err: base}
	if !errors.Is(err, base) || !strings.Contains(err.Error(), "Hash mismatch for `fastapi==0.115.11`") {
		t.Errorf("error: %v", err)
	}
	for range 20 {
		s.add(&client.SolveStatus{Logs: []*client.VertexLog{{Vertex: a, Data: []byte("x\n")}}})
	}
	if _, lines := s.explain(); len(lines) != keepLines || lines[keepLines-1] != "x" {
		t.Errorf("kept %d lines (%q), want the last %d", len(lines), lines, keepLines)
	}
}

func TestStepErrorHint(t *testing.T) {
	uv := &StepError{Step: "uv pip install pandas", Err: errors.New("variant backend-prod: exit code: 1"), Lines: []string{
		"  × No solution found when resolving dependencies:",
		"  ╰─▶ Because numpy was not found in the package registry and you require",
		"      numpy==2.2.4, we can conclude that your requirements are unsatisfiable.",
		"      hint: An index URL (http://127.0.0.1:3142/simple) could not be queried",
		"      due to a lack of valid authentication credentials (401 Unauthorized).",
	}}
	if h := uv.Hint(); !strings.Contains(h, "the package index http://127.0.0.1:3142/simple answered 401 Unauthorized") || !strings.Contains(uv.Error(), h) {
		t.Errorf("uv: hint %q", h)
	}
	pip := &StepError{Err: errors.New("x"), Lines: []string{"ERROR: HTTP error 403 while getting https://idx.example/files/a-1.whl"}}
	if h := pip.Hint(); !strings.Contains(h, "https://idx.example/files/a-1.whl answered 403 Forbidden") {
		t.Errorf("pip: hint %q", h)
	}
	if h := (&StepError{Err: errors.New("x"), Lines: []string{"Hash mismatch for fastapi==0.115.0", "size 4010 bytes"}}).Hint(); h != "" {
		t.Errorf("a hash mismatch got the hint %q", h)
	}
}

// TestPushHint: a refused push names the registry, the image, the HTTP
// status and request from the export's log (not its upload-state URL),
// the retries, and for 401/403 how to log in.
func TestPushHint(t *testing.T) {
	blob := &StepError{Step: "exporting to image", Err: errors.New("variant backend-prod: failed to solve: failed to push 127.0.0.1:40105/ns/ktrdr-backend:prod: unknown: unknown error"), Lines: []string{
		`error: failed commit on ref "config-sha256:c4": unexpected status from PUT request to http://127.0.0.1:40105/v2/ns/ktrdr-backend/blobs/uploads/01a2?_state=_ptk&digest=sha256%3Ac4: 500 Internal Server Error`,
		"retrying in 1s",
		`error: failed commit on ref "config-sha256:c4": unexpected status from PUT request to http://127.0.0.1:40105/v2/ns/ktrdr-backend/blobs/uploads/01a3?_state=_xx&digest=sha256%3Ac4: 500 Internal Server Error`,
		"retrying in 2s",
	}}
	h := blob.Hint()
	for _, want := range []string{"the registry 127.0.0.1:40105 refused the push of 127.0.0.1:40105/ns/ktrdr-backend:prod",
		"500 Internal Server Error to PUT /v2/ns/ktrdr-backend/blobs/uploads/01a3", "retried 2 times", "no manifest of this image was pushed"} {
		if !strings.Contains(h, want) {
			t.Errorf("hint %q lacks %q", h, want)
		}
	}
	if strings.Contains(h, "_state") || strings.Contains(h, "docker login") || strings.Contains(h, "package index") {
		t.Errorf("hint %q", h)
	}
	auth := &StepError{Step: "exporting to image", Err: errors.New("variant backend-prod: failed to solve: failed to push 127.0.0.1:5000/ns/ktrdr-backend:prod: unauthorized: authentication required")}
	if h := auth.Hint(); !strings.Contains(h, "unauthorized (HTTP 401)") || !strings.Contains(h, "docker login 127.0.0.1:5000") || strings.Contains(h, "package index") || !strings.Contains(auth.Error(), h) {
		t.Errorf("401 hint %q", h)
	}
}
