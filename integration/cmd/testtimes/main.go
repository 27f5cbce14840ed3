// Command testtimes runs go test with -json, keeping its events in a file
// while printing the usual -v output, and reports the slowest tests of
// such a file (make test-times).
//
//	testtimes run -json FILE -- go test -json ./integration/...
//	testtimes report [-n 20] [-markdown] FILE...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testtimes:", err)
		if code == 0 {
			code = 2
		}
	}
	os.Exit(code)
}

const usage = `usage: testtimes run -json FILE -- COMMAND [ARGS...]
       testtimes report [-n N] [-markdown] FILE...

  run     run COMMAND (a go test -json command), append its events to FILE
          and print their output as go test -v does; exit with its status
  report  print the N slowest tests (default 20) of the events in FILE,
          then each package's time and the total
`

func run(args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2, errors.New("no command")
	}
	switch args[0] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		file := fs.String("json", "", "file the go test -json events are appended to")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if *file == "" || fs.NArg() == 0 {
			fmt.Fprint(stderr, usage)
			return 2, errors.New("run: -json FILE and a command are required")
		}
		return runTests(*file, fs.Args(), stdout, stderr)
	case "report":
		fs := flag.NewFlagSet("report", flag.ContinueOnError)
		fs.SetOutput(stderr)
		n := fs.Int("n", 20, "how many tests to list")
		md := fs.Bool("markdown", false, "print a Markdown table")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if fs.NArg() == 0 {
			fmt.Fprint(stderr, usage)
			return 2, errors.New("report: no event file given")
		}
		var evs []event
		for _, f := range fs.Args() {
			e, err := readEvents(f)
			if err != nil {
				return 1, err
			}
			evs = append(evs, e...)
		}
		sum := summarize(evs)
		if len(sum.tests) == 0 {
			return 1, fmt.Errorf("report: no finished test in %s", strings.Join(fs.Args(), ", "))
		}
		printReport(stdout, sum, *n, *md)
		return 0, nil
	default:
		fmt.Fprint(stderr, usage)
		return 2, fmt.Errorf("unknown command %q", args[0])
	}
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// runTests runs argv, appends its stdout (go test -json events) to file and
// prints each event's output.
func runTests(file string, argv []string, stdout, stderr io.Writer) (int, error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 2, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 2, err
	}
	if err := cmd.Start(); err != nil {
		return 2, fmt.Errorf("run: %w", err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		f.Write(line)
		f.Write([]byte{'\n'})
		var e event
		if json.Unmarshal(line, &e) != nil {
			// Not an event (a build error, a panic before test2json):
			// print it as it came.
			fmt.Fprintf(stdout, "%s\n", line)
			continue
		}
		if e.Output != "" {
			io.WriteString(stdout, e.Output)
		}
	}
	scanErr := sc.Err()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 2, err
	}
	if scanErr != nil {
		return 2, fmt.Errorf("reading the events: %w", scanErr)
	}
	return 0, nil
}

func readEvents(file string) ([]event, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
			continue
		}
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: not a go test -json event: %w", file, line, err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

// timing is one finished test or package.
type timing struct {
	Package, Test, Result string
	Elapsed               time.Duration
}

type summary struct {
	tests, packages []timing
	total           time.Duration
}

// summarize keeps the top-level tests (subtests are inside their parent's
// time) and packages that finished, slowest first.
func summarize(evs []event) summary {
	var s summary
	for _, e := range evs {
		if e.Action != "pass" && e.Action != "fail" && e.Action != "skip" {
			continue
		}
		t := timing{Package: e.Package, Test: e.Test, Result: e.Action, Elapsed: time.Duration(e.Elapsed * float64(time.Second))}
		switch {
		case e.Test == "":
			s.packages = append(s.packages, t)
			s.total += t.Elapsed
		case !strings.Contains(e.Test, "/"):
			s.tests = append(s.tests, t)
		}
	}
	for _, l := range [][]timing{s.tests, s.packages} {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Elapsed > l[j].Elapsed })
	}
	return s
}

func printReport(w io.Writer, s summary, n int, markdown bool) {
	if n > len(s.tests) {
		n = len(s.tests)
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.0f s", d.Seconds()) }
	if markdown {
		fmt.Fprintln(w, "| test | package | time | result |")
		fmt.Fprintln(w, "|---|---|---:|---|")
		for _, t := range s.tests[:n] {
			fmt.Fprintf(w, "| `%s` | `%s` | %s | %s |\n", t.Test, t.Package, sec(t.Elapsed), t.Result)
		}
		for _, p := range s.packages {
			fmt.Fprintf(w, "| (package) | `%s` | %s | %s |\n", p.Package, sec(p.Elapsed), p.Result)
		}
		fmt.Fprintf(w, "| (total) | | %s | |\n", sec(s.total))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "slowest %d of %d tests\tpackage\ttime\tresult\n", n, len(s.tests))
	for _, t := range s.tests[:n] {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Test, t.Package, sec(t.Elapsed), t.Result)
	}
	fmt.Fprintln(tw, "\t\t\t")
	for _, p := range s.packages {
		fmt.Fprintf(tw, "(package)\t%s\t%s\t%s\n", p.Package, sec(p.Elapsed), p.Result)
	}
	fmt.Fprintf(tw, "(total)\t\t%s\t\n", sec(s.total))
	tw.Flush()
}
