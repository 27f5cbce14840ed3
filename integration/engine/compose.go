package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/variants"
)

// Ports the Compose check publishes on 127.0.0.1 (not KTRDR's defaults,
// so a developer's own stack on 8000 and 5003 is left alone).
const (
	composeAPIPort    = "18000"
	composeWorkerPort = "15003"
	composeProject    = "ktrdr-verify"
)

// compose brings examples/ktrdr/compose.yaml up on a copy of the example:
// backend-dev with the code mounted and --reload, worker-cpu beside it;
// waits for both healthchecks (Compose v1 has no --wait), then changes a
// route in the mounted code and waits for the reloaded answer.
func (v *verifier) compose(ctx context.Context) {
	if !v.has(variants.BackendDev) || !v.has(variants.WorkerCPU) {
		return
	}
	v.begin("development with Compose: examples/ktrdr/compose.yaml, code mounted, --reload")
	dir := filepath.Join(v.WorkDir, "compose", "ktrdr")
	os.RemoveAll(dir)
	os.MkdirAll(filepath.Dir(dir), 0o755)
	if out, err := exec.CommandContext(ctx, "cp", "-a", v.ContextDir, dir).CombinedOutput(); err != nil {
		v.record(Check{Verdict: Fail, Detail: fmt.Sprintf("copying the example: %v: %s", err, out)})
		return
	}
	compose := "docker-compose"
	if v.res.Facts.ComposeV2 != "" {
		compose = "docker compose"
	}
	env := fmt.Sprintf("KTRDR_API_PORT=%s KTRDR_WORKER_PORT=%s KTRDR_WORKER_TAG=test ", composeAPIPort, composeWorkerPort)
	cmd := func(args string) string {
		return fmt.Sprintf("cd %s && %s%s -p %s %s", dir, env, compose, composeProject, args)
	}
	v.Docker.Shell(ctx, dir, cmd("down --remove-orphans"))
	defer v.sh(context.WithoutCancel(ctx), 2*time.Minute, cmd("down"), succeeds("stopped and removed"))

	ver := "Compose v1 (" + v.res.Facts.ComposeV1 + "): no up --wait, so the healthchecks are waited on with docker inspect"
	if compose != "docker-compose" {
		ver = "Compose v2"
	}
	if c := v.sh(ctx, 5*time.Minute, cmd("up -d"), succeeds(ver)); c.Verdict != Pass {
		return
	}
	for _, svc := range []string{"backend", "backtest-worker"} {
		id, _ := v.Docker.Shell(ctx, dir, cmd("ps -q "+svc))
		id = strings.TrimSpace(lastLine(id))
		v.poll(ctx, 3*time.Minute, "docker inspect --format '{{.State.Health.Status}}' "+id, "healthy", svc+" is healthy (its image's HEALTHCHECK test, every 5s as compose.yaml says)")
	}
	v.poll(ctx, 30*time.Second, "curl -fsS http://127.0.0.1:"+composeAPIPort+"/api/v1/health", `"service":"ktrdr-api"`, "the backend answers on the host")
	v.poll(ctx, 30*time.Second, "curl -fsS http://127.0.0.1:"+composeWorkerPort+"/health", `"healthy":true`, "the worker answers on the host")

	main := filepath.Join(dir, "ktrdr", "api", "main.py")
	b, err := os.ReadFile(main)
	if err != nil || !strings.Contains(string(b), `"service": "ktrdr-api"`) {
		v.record(Check{Verdict: Fail, Detail: fmt.Sprintf("%s: no route answer to change: %v", main, err)})
		return
	}
	edit := strings.Replace(string(b), `"service": "ktrdr-api"`, `"service": "ktrdr-api", "reloaded": "yes"`, 1)
	if err := os.WriteFile(main, []byte(edit), 0o644); err != nil {
		v.record(Check{Verdict: Fail, Detail: err.Error()})
		return
	}
	v.record(Check{Command: "edit " + main + `: the health route also answers "reloaded": "yes"`, Verdict: Pass, Detail: "changed in the mounted directory"})
	v.poll(ctx, 60*time.Second, "curl -fsS http://127.0.0.1:"+composeAPIPort+"/api/v1/health", `"reloaded":"yes"`, "uvicorn --reload picked up the change in the mounted file")
	v.sh(ctx, time.Minute, cmd("logs backend")+" 2>&1 | grep -i -m 3 -e 'detected changes' -e reloading", prints("main.py"))
}
