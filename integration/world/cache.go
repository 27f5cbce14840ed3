package world

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultCacheDir is where the world lives when neither Options.CacheDir nor
// $KTRDR_IMAGES_CACHE says otherwise: outside any checkout, so CI and later
// runs on the same machine reuse it.
const DefaultCacheDir = "/var/cache/ktrdr-images"

// CacheEnv is the environment variable that overrides DefaultCacheDir.
const CacheEnv = "KTRDR_IMAGES_CACHE"

// layout names every path of the cache directory in one place.
type layout struct {
	root     string
	registry string // host:port of the registry
	index    string // host:port of the index server
}

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.root}, elem...)...)
}
func (l layout) bin(name string) string     { return l.path("bin", name) }
func (l layout) logFile(name string) string { return l.path("logs", name+".log") }
func (l layout) pidFile(name string) string { return l.path("run", name+".pid") }
func (l layout) socket() string             { return l.path("run", "buildkitd.sock") }

// arm64Stamp is written once the linux/arm64 half is up; from then on
// every Up of this cache keeps it up.
func (l layout) arm64Stamp() string { return l.path("arm64.made") }

// arm64Made reports whether an earlier Up of this cache made the
// linux/arm64 half (its stamp, or the arm64 python base of a cache made
// before the stamp existed).
func (l layout) arm64Made() bool {
	for _, p := range []string{l.arm64Stamp(), l.path("bases", "python-arm64", "image.json")} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

func (l layout) ensure() error {
	for _, d := range []string{"bin", "logs", "run", "buildkitd", "registry", "bases", "debs", "debs-arm64", "index", "index-arm64"} {
		if err := os.MkdirAll(l.path(d), 0o755); err != nil {
			return fmt.Errorf("cache directory %s: %w", l.root, err)
		}
	}
	return nil
}

// flock takes an flock(2) on path (LOCK_EX or LOCK_SH) and returns the open
// file; closing it releases the lock.
func flock(path string, how int, nonBlocking bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if nonBlocking {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// key hashes the JSON form of its inputs: the cache key of a built thing.
func key(inputs ...any) string {
	h := sha256.New()
	for _, in := range inputs {
		b, err := json.Marshal(in)
		if err != nil {
			// Inputs are plain data defined in this package.
			b = []byte(fmt.Sprint(in))
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// readJSON reads a stamp file; a missing or unreadable file is reported as
// an error so that the caller rebuilds rather than trusts it.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON writes a stamp file atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stepError is a failure of one step of Up: it names the step, what failed
// and the log file, and carries the last lines of that log.
type stepError struct {
	step string
	log  string
	err  error
}

func (e *stepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.step, e.err)
	if e.log != "" {
		fmt.Fprintf(&b, "\n  log: %s", e.log)
		if t := tail(e.log, 25); t != "" {
			b.WriteString("\n  last lines:\n")
			for _, line := range strings.Split(t, "\n") {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *stepError) Unwrap() error { return e.err }

func failed(step, log string, err error) error {
	var se *stepError
	if errors.As(err, &se) {
		return err
	}
	return &stepError{step: step, log: log, err: err}
}

// runLogged runs a command with its output appended to logPath, in a clean
// environment plus env (so no host PIP_*, GOFLAGS or proxy variable leaks
// in unless passed on purpose).
func runLogged(logPath, dir string, env []string, name string, args ...string) error {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	fmt.Fprintf(lf, "\n$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = lf
	cmd.Stderr = lf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// output runs a command and returns its trimmed standard output.
func output(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// baseEnv is the environment external commands run with.
func baseEnv(extra ...string) []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	for _, k := range []string{"HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}
