package world

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// service is one long-running process of the world: buildkitd, the registry
// or the index server.
type service struct {
	name string   // buildkitd, registry, index
	argv []string // command line; argv[0] is an absolute path
	env  []string
	// marker is a string of the command line that identifies our instance
	// (the path of its config or state under the cache directory).
	marker string
	// endpoint describes where it listens, for messages.
	endpoint string
	// inUse reports whether something listens on the endpoint.
	inUse func() bool
	// healthy reports whether the endpoint answers as our service does.
	healthy func(ctx context.Context) error
	// cleanup removes leftovers of a dead instance (a stale socket).
	cleanup func()
}

// running is a service process this process started.
type running struct {
	svc  *service
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// readPID returns the pid recorded for a service and whether that process is
// alive and still ours (its command line holds the marker).
func readPID(l layout, s *service) (int, bool) {
	b, err := os.ReadFile(l.pidFile(s.name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return pid, false
	}
	return pid, strings.Contains(string(cmdline), s.marker)
}

// ensure starts a service unless our instance is already running and
// healthy. It returns the started process, or nil when it reused one.
func ensureService(ctx context.Context, l layout, s *service) (*running, error) {
	logPath := l.logFile(s.name)
	pid, ours := readPID(l, s)
	if ours {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.healthy(hctx)
		cancel()
		if err == nil {
			return nil, nil
		}
		// Ours but not answering: stop it and start afresh.
		stopPID(pid, 10*time.Second)
	}
	if s.inUse() {
		who := "an unknown process"
		if p, cmd := listenerOf(s.endpoint); p > 0 {
			who = fmt.Sprintf("pid %d (%s)", p, cmd)
		}
		return nil, failed("starting "+s.name, "", fmt.Errorf("%s is already in use by %s, which is not the ktrdr-images %s of %s; stop it or use another cache directory/port", s.endpoint, who, s.name, l.root))
	}
	if s.cleanup != nil {
		s.cleanup()
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(lf, "# %s\n# started by pid %d at %s\n", strings.Join(s.argv, " "), os.Getpid(), time.Now().Format(time.RFC3339))
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = s.env
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Dir = l.root
	// Its own session: a Ctrl-C in the terminal that ran `ktrdr-world up`
	// must not take the world down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, failed("starting "+s.name, logPath, err)
	}
	lf.Close()
	r := &running{svc: s, cmd: cmd, done: make(chan struct{})}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	if err := writeFileAtomic(l.pidFile(s.name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		r.stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return nil, failed("starting "+s.name, logPath, fmt.Errorf("it exited: %v", r.err))
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = s.healthy(hctx)
		cancel()
		if last == nil {
			return r, nil
		}
	}
	r.stop()
	return nil, failed("starting "+s.name, logPath, fmt.Errorf("not healthy on %s after 60s: %v", s.endpoint, last))
}

// stop ends a process this process started.
func (r *running) stop() error {
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return nil
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	return nil
}

// stopPID ends a process known by its pid (one a previous run left).
func stopPID(pid int, grace time.Duration) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		return err
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if err := p.Signal(syscall.Signal(0)); err != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p.Kill()
}

// inUse reports whether something accepts connections on addr, a
// network ("tcp" or "unix") address.
func inUse(network, addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// listenerOf finds the process listening on a TCP address or unix socket
// path, for error messages. It returns 0 when it cannot tell.
func listenerOf(endpoint string) (int, string) {
	inode := ""
	if strings.HasPrefix(endpoint, "/") {
		inode = unixInode(endpoint)
	} else {
		inode = tcpInode(endpoint)
	}
	if inode == "" {
		return 0, ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && link == "socket:["+inode+"]" {
			pidStr := strings.Split(fd, "/")[2]
			pid, _ := strconv.Atoi(pidStr)
			cmd, _ := os.ReadFile("/proc/" + pidStr + "/cmdline")
			return pid, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return 0, ""
}

func tcpInode(addr string) string {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	port, _ := strconv.Atoi(portStr)
	want := fmt.Sprintf(":%04X", port)
	ip := net.ParseIP(host).To4()
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ... inode
			if len(fields) < 10 || fields[3] != "0A" || !strings.HasSuffix(fields[1], want) {
				continue
			}
			if ip != nil && file == "/proc/net/tcp" {
				local := fmt.Sprintf("%02X%02X%02X%02X", ip[3], ip[2], ip[1], ip[0])
				if !strings.HasPrefix(fields[1], local) && !strings.HasPrefix(fields[1], "00000000") {
					continue
				}
			}
			f.Close()
			return fields[9]
		}
		f.Close()
	}
	return ""
}

func unixInode(path string) string {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 8 && fields[len(fields)-1] == path {
			return fields[6]
		}
	}
	return ""
}
