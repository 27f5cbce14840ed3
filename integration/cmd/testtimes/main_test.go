package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const events = `{"Action":"run","Package":"p","Test":"TestSlow"}
{"Action":"output","Package":"p","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}
{"Action":"pass","Package":"p","Test":"TestSlow/sub","Elapsed":99}
{"Action":"pass","Package":"p","Test":"TestSlow","Elapsed":120.4}
{"Action":"fail","Package":"p","Test":"TestFast","Elapsed":2}
{"Action":"skip","Package":"q","Test":"TestSkipped","Elapsed":0}
{"Action":"fail","Package":"p","Elapsed":123}
{"Action":"pass","Package":"q","Elapsed":1}
`

func TestReport(t *testing.T) {
	f := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(f, []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code, err := run([]string{"report", "-n", "2", f}, &out, &errOut)
	if err != nil || code != 0 {
		t.Fatalf("report: %d %v", code, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// Slowest first, subtests left out, n honoured, packages and total.
	if !strings.HasPrefix(lines[1], "TestSlow ") || !strings.Contains(lines[1], "120 s") || !strings.HasPrefix(lines[2], "TestFast ") {
		t.Errorf("report:\n%s", out.String())
	}
	if strings.Contains(out.String(), "TestSlow/sub") || strings.Contains(out.String(), "TestSkipped") {
		t.Errorf("report lists a subtest or more than -n tests:\n%s", out.String())
	}
	if !strings.Contains(lines[len(lines)-1], "124 s") {
		t.Errorf("total is not the packages' 124 s:\n%s", out.String())
	}
}

func TestRunKeepsEventsAndStatus(t *testing.T) {
	f := filepath.Join(t.TempDir(), "events.json")
	var out, errOut bytes.Buffer
	code, err := run([]string{"run", "-json", f, "--", "/bin/sh", "-c", `printf '%s\n' '{"Action":"output","Output":"hello\n"}' 'not json'; exit 3`}, &out, &errOut)
	if err != nil || code != 3 {
		t.Fatalf("run: exit %d, %v; want 3 and no error", code, err)
	}
	if out.String() != "hello\nnot json\n" {
		t.Errorf("printed %q", out.String())
	}
	if b, _ := os.ReadFile(f); strings.Count(string(b), "\n") != 2 {
		t.Errorf("kept %q", b)
	}
}

func TestReportNoEvents(t *testing.T) {
	f := filepath.Join(t.TempDir(), "events.json")
	os.WriteFile(f, nil, 0o644)
	var out, errOut bytes.Buffer
	if code, err := run([]string{"report", f}, &out, &errOut); code == 0 || err == nil {
		t.Errorf("an empty file gave exit %d, %v", code, err)
	}
}
