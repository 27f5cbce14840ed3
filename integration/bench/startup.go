package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ktrdr/ktrdr-images/integration/engine"
	"github.com/ktrdr/ktrdr-images/variants"
)

// StartupVariants are the images whose start-up is timed, with and without
// compile-bytecode: the two KTRDR runs most.
var StartupVariants = []string{variants.BackendProd, variants.WorkerCPU}

// StartupTime starts ref with the Docker engine, publishing port on
// 127.0.0.1, and returns the time from `docker run` to the first answer
// 200 of GET path. The container is removed afterwards.
func StartupTime(ctx context.Context, d engine.Docker, ref string, port int, path string) (time.Duration, error) {
	start := time.Now()
	out, err := d.Output(ctx, "run", "-d", "-p", fmt.Sprintf("127.0.0.1::%d", port), ref)
	if err != nil {
		return 0, fmt.Errorf("docker run %s: %v: %s", ref, err, strings.TrimSpace(out))
	}
	id := strings.TrimSpace(out)
	if i := strings.LastIndex(id, "\n"); i >= 0 {
		id = id[i+1:]
	}
	defer d.Output(context.Background(), "rm", "-f", id)
	hp, err := d.Output(ctx, "port", id, fmt.Sprintf("%d/tcp", port))
	if err != nil {
		return 0, fmt.Errorf("docker port %s: %v: %s", id, err, hp)
	}
	addr := strings.TrimSpace(strings.Split(strings.TrimSpace(hp), "\n")[0])
	url := "http://" + addr + path
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs, _ := d.Output(ctx, "logs", "--tail", "20", id)
	return 0, fmt.Errorf("%s: no answer 200 from %s within 90s; its last log lines:\n%s", ref, url, logs)
}
