package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/variants"
)

// stopGrace is docker stop's default grace period before SIGKILL.
const stopGrace = 10 * time.Second

// smoke runs backend-prod as a service: health from inside and from the
// host's published port, its HEALTHCHECK reaching healthy, and docker stop
// ending it cleanly within the grace period (tini forwards SIGTERM to
// uvicorn).
func (v *verifier) smoke(ctx context.Context) {
	if !v.has(variants.BackendProd) {
		return
	}
	v.begin("backend-prod as a service: health inside and on the host, HEALTHCHECK, docker stop")
	const name = "ktrdr-verify-prod"
	v.Docker.Output(ctx, "rm", "-f", name)
	defer v.Docker.Output(context.WithoutCancel(ctx), "rm", "-f", name)
	if c := v.sh(ctx, time.Minute, "docker run -d --name "+name+" -p 127.0.0.1::8000 ktrdr-backend:prod", succeeds("started")); c.Verdict != Pass {
		return
	}
	port := v.sh(ctx, time.Minute, "docker port "+name+" 8000", prints("127.0.0.1:"))
	hostAddr := strings.TrimSpace(lastLine(port.Output))

	inside := "docker exec " + name + " curl -fsS http://localhost:8000/api/v1/health"
	v.poll(ctx, 60*time.Second, inside, `"status":"ok"`, "the API answers inside the container")
	if hostAddr != "" {
		v.poll(ctx, 30*time.Second, "curl -fsS http://"+hostAddr+"/api/v1/health", `"status":"ok"`, "the API answers on the host's published port")
	}
	// The image's own HEALTHCHECK: interval 30s, so the first check runs
	// about 30 s after the start.
	v.poll(ctx, 150*time.Second, "docker inspect --format '{{.State.Health.Status}}' "+name, "healthy", "the image's HEALTHCHECK (curl -fs http://localhost:8000/api/v1/health every 30s) reports healthy")
	v.sh(ctx, time.Minute, "docker inspect --format '{{json .Config.Healthcheck}}' "+name, prints("/api/v1/health"))

	stop := v.sh(ctx, 2*time.Minute, "docker stop "+name, succeeds("stopped"))
	logs := v.sh(ctx, time.Minute, "docker logs "+name+" 2>&1 | tail -n 4", prints("Finished server process"))
	v.sh(ctx, time.Minute, "docker inspect --format 'exit code {{.State.ExitCode}}, OOM killed {{.State.OOMKilled}}' "+name, func(out string, err error) (Verdict, string) {
		took := stop.Took.Round(100 * time.Millisecond)
		switch {
		case err != nil:
			return Fail, err.Error()
		case stop.Took >= stopGrace:
			return Fail, fmt.Sprintf("docker stop took %s, the whole %s grace period: SIGTERM did not end the server, docker killed it", took, stopGrace)
		case logs.Verdict != Pass:
			return Fail, "the server did not log its graceful shutdown"
		case strings.Contains(out, "exit code 0,"):
			return Pass, fmt.Sprintf("docker stop ended it in %s, within the %s grace period: tini (PID 1) forwarded SIGTERM, uvicorn shut down gracefully, exit code 0", took, stopGrace)
		case strings.Contains(out, "exit code 143,"):
			// uvicorn >= 0.29 raises the signal it caught again once
			// its graceful shutdown is done, so it dies of SIGTERM and
			// tini exits 128+15.
			return Pass, fmt.Sprintf("docker stop ended it in %s, within the %s grace period: tini (PID 1) forwarded SIGTERM, uvicorn shut down gracefully (\"Finished server process\") and then re-raised SIGTERM, as uvicorn >= 0.29 does, so tini exits 143 = 128+SIGTERM; 137 would be docker's SIGKILL after the grace period", took, stopGrace)
		}
		return Fail, "expected exit code 0 or 143 (SIGTERM after a graceful shutdown)"
	})
}

// poll runs line until its output contains want, for at most d, and
// records the last run.
func (v *verifier) poll(ctx context.Context, d time.Duration, line, want, what string) Check {
	start := time.Now()
	deadline := start.Add(d)
	var out string
	var err error
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err = v.Docker.Shell(cctx, v.WorkDir, line)
		cancel()
		if err == nil && strings.Contains(out, want) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	c := Check{Command: line, Output: out, Took: time.Since(start)}
	if err == nil && strings.Contains(out, want) {
		c.Verdict, c.Detail = Pass, fmt.Sprintf("%s (after %s)", what, c.Took.Round(time.Second))
	} else {
		c.Verdict, c.Detail = Fail, fmt.Sprintf("no %q after %s", want, d)
	}
	return v.record(c)
}
