package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Spec says what an image must be. internal/build derives it from the
// variant's data.
type Spec struct {
	// Machine is what uname -m and the image's Python must say inside it
	// ("x86_64", "aarch64"; under emulation for a foreign platform); ""
	// skips the check.
	Machine string
	// User, UID and GID are the account the image must run as.
	User     string
	UID, GID int
	// AppDir must belong to User entirely, except Mounted: paths mounted
	// at run time (the dev image's code), which are not part of the image.
	AppDir  string
	Mounted []string
	// Absent are paths that must not exist (context directories that
	// .dockerignore keeps out: archive/, tests/).
	Absent []string
	// Torch is "none", "cpu" or "cuda".
	Torch string
	// Port and HealthPath locate the health endpoint; HealthExpect are
	// key/values its JSON body must have.
	Port         int
	HealthPath   string
	HealthExpect map[string]any
	// Tools are commands (with arguments) that must run, like
	// "pytest --version".
	Tools [][]string
	// Command is the image's own check (an image without a port: a
	// worker's one unit of work), run as the image's user; it must exit 0.
	Command []string
	// BaseEnv is the base image's env: PATH's entries and LANG must survive.
	BaseEnv []string
	// Labels must be set on the image.
	Labels []string
	// Volumes must be declared.
	Volumes []string
	// Distributions, when set, are exactly the distributions the image
	// must have installed: normalized name → version (the variant's pins
	// and the project).
	Distributions map[string]string
	// Provided are packages left out on purpose because the base image
	// provides them (normalized names): requirements on them are met.
	Provided map[string]bool
	// ServerTimeout bounds how long the server may take to answer.
	ServerTimeout time.Duration
}

// Check runs every probe of spec against img and returns their results in
// a fixed order. Only infrastructure failures (the container cannot start)
// are returned as an error; a probe that fails is a Result with OK false.
func Check(ctx context.Context, c *Container, cfg dockerspec.DockerOCIImage, spec Spec) []Result {
	var out []Result
	add := func(r Result) { out = append(out, r) }
	add(checkConfig(cfg, spec))
	if spec.Machine != "" {
		add(checkMachine(ctx, c, spec.Machine))
	}
	add(checkUser(ctx, c, cfg, spec))
	add(checkOwnership(ctx, c, spec))
	add(checkClean(ctx, c, spec))
	if spec.Distributions != nil {
		add(checkDistributions(ctx, c, spec))
	}
	switch spec.Torch {
	case "none":
		add(checkNoTorch(ctx, c))
	case "cpu":
		add(checkCPUTorch(ctx, c))
	case "cuda":
		add(checkCUDATorch(ctx, c))
	}
	for _, tool := range spec.Tools {
		add(checkTool(ctx, c, tool))
	}
	if len(spec.Command) > 0 {
		add(checkCommand(ctx, c, spec.Command))
	}
	if spec.Port > 0 && spec.HealthPath != "" {
		add(checkHealth(ctx, c, spec))
	}
	return out
}

// checkMachine runs uname -m and the venv's Python inside the image: both
// must say the platform's machine, so an arm64 image really runs arm64
// binaries (under emulation on an amd64 host) and its interpreter is one.
func checkMachine(ctx context.Context, c *Container, want string) Result {
	r := c.Run(ctx, "", "uname", "-m")
	if r.Err != nil {
		return result("platform", fmt.Errorf("uname -m: %v: %s", r.Err, lastLine(r.Stderr)), "")
	}
	got := strings.TrimSpace(r.Stdout)
	var py struct {
		Machine string `json:"machine"`
		Tag     string `json:"tag"`
	}
	if err := c.JSON(ctx, `import json, platform, sysconfig; print(json.dumps({"machine": platform.machine(), "tag": sysconfig.get_platform()}))`, &py); err != nil {
		return result("platform", fmt.Errorf("python: %w", err), "")
	}
	if got != want || py.Machine != want {
		return result("platform", fmt.Errorf("uname -m says %s and python's platform.machine() %s, expected %s", got, py.Machine, want), "")
	}
	return result("platform", nil, fmt.Sprintf("uname -m: %s, python: %s (%s)", got, py.Machine, py.Tag))
}

// result makes a Result: OK with detail, or failed with the error's text.
func result(name string, err error, detail string) Result {
	if err != nil {
		return Result{Name: name, Detail: err.Error()}
	}
	return Result{Name: name, OK: true, Detail: detail}
}

func checkConfig(cfg dockerspec.DockerOCIImage, spec Spec) Result {
	c := cfg.Config
	env := map[string]string{}
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	for _, e := range spec.BaseEnv {
		k, v, _ := strings.Cut(e, "=")
		switch k {
		case "PATH":
			for _, dir := range strings.Split(v, ":") {
				if !slices.Contains(strings.Split(env["PATH"], ":"), dir) {
					return result("config", fmt.Errorf("PATH %q lost the base's %s", env["PATH"], dir), "")
				}
			}
		case "LANG":
			if env["LANG"] == "" {
				return result("config", fmt.Errorf("LANG of the base (%s) is gone", v), "")
			}
		}
	}
	if c.User != spec.User {
		return result("config", fmt.Errorf("user is %q, want %q", c.User, spec.User), "")
	}
	if len(c.Entrypoint) < 1 || !strings.HasSuffix(c.Entrypoint[0], "/tini") {
		return result("config", fmt.Errorf("entrypoint %v is not tini", c.Entrypoint), "")
	}
	if spec.Port > 0 {
		if _, ok := c.ExposedPorts[strconv.Itoa(spec.Port)+"/tcp"]; !ok {
			return result("config", fmt.Errorf("port %d/tcp is not exposed (%v)", spec.Port, c.ExposedPorts), "")
		}
		if c.Healthcheck == nil || !strings.Contains(strings.Join(c.Healthcheck.Test, " "), spec.HealthPath) {
			return result("config", fmt.Errorf("no healthcheck on %s", spec.HealthPath), "")
		}
	}
	for _, v := range spec.Volumes {
		if _, ok := c.Volumes[v]; !ok {
			return result("config", fmt.Errorf("volume %s not declared", v), "")
		}
	}
	for _, l := range spec.Labels {
		if c.Labels[l] == "" {
			return result("config", fmt.Errorf("label %s not set", l), "")
		}
	}
	return result("config", nil, fmt.Sprintf("user %s, entrypoint %s, %d env, %d labels, base PATH and LANG kept", c.User, strings.Join(c.Entrypoint, " "), len(c.Env), len(c.Labels)))
}

func checkUser(ctx context.Context, c *Container, cfg dockerspec.DockerOCIImage, spec Spec) Result {
	if len(cfg.Config.Entrypoint) == 0 {
		return result("user", fmt.Errorf("the image has no entrypoint: expected tini as PID 1 (an ENTRYPOINT naming it)"), "")
	}
	r := c.Run(ctx, "", "/bin/sh", "-c", "id -un; id -u; id -g; test -x "+shellQuote(cfg.Config.Entrypoint[0])+" && echo tini-ok")
	if r.Err != nil {
		return result("user", fmt.Errorf("id: %v: %s", r.Err, tail(r.Stderr, 300)), "")
	}
	f := strings.Fields(r.Stdout)
	want := []string{spec.User, strconv.Itoa(spec.UID), strconv.Itoa(spec.GID), "tini-ok"}
	if !slices.Equal(f, want) {
		return result("user", fmt.Errorf("runs as %v, want %v", f, want), "")
	}
	return result("user", nil, fmt.Sprintf("runs as %s (%d:%d), tini present", spec.User, spec.UID, spec.GID))
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func checkOwnership(ctx context.Context, c *Container, spec Spec) Result {
	prune := ""
	for _, m := range spec.Mounted {
		prune += fmt.Sprintf(`-path %s -prune -o `, m)
	}
	script := fmt.Sprintf(`n=$(find %s -xdev %s\( ! -user %d -o ! -group %d \) -print | head -5); test -z "$n" || { echo "$n"; exit 1; }; find %s -xdev %s-print | wc -l`, spec.AppDir, prune, spec.UID, spec.GID, spec.AppDir, prune)
	r := c.Run(ctx, "0:0", "/bin/sh", "-c", script)
	if r.Err != nil {
		return result("ownership", fmt.Errorf("files under %s not owned by %s: %s %s", spec.AppDir, spec.User, strings.TrimSpace(r.Stdout), tail(r.Stderr, 200)), "")
	}
	return result("ownership", nil, fmt.Sprintf("all %s entries under %s owned by %d:%d", strings.TrimSpace(r.Stdout), spec.AppDir, spec.UID, spec.GID))
}

func checkClean(ctx context.Context, c *Container, spec Spec) Result {
	var absent []string
	for _, p := range spec.Absent {
		absent = append(absent, fmt.Sprintf(`test ! -e %s || bad="$bad %s";`, p, p))
	}
	script := `bad="";
for t in gcc cc g++ make; do command -v $t >/dev/null 2>&1 && bad="$bad compiler:$t"; done;
for d in /root/.cache /app/.cache /home/*/.cache /var/cache/pip /var/cache/uv; do [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ] && bad="$bad cache:$d"; done;
l=$(find /var/lib/apt/lists -type f ! -name lock 2>/dev/null | head -3); [ -z "$l" ] || bad="$bad apt-lists:$l";
command -v uv >/dev/null 2>&1 && bad="$bad installer:uv";
` + strings.Join(absent, "\n") + `
test -z "$bad" || { echo "$bad"; exit 1; }`
	r := c.Run(ctx, "0:0", "/bin/sh", "-c", script)
	if r.Err != nil {
		return result("clean", fmt.Errorf("found:%s %s", strings.TrimSpace(r.Stdout), tail(r.Stderr, 200)), "")
	}
	return result("clean", nil, "no compiler, no uv, no pip/uv cache, no apt lists, "+strings.Join(spec.Absent, " ")+" absent")
}

func checkNoTorch(ctx context.Context, c *Container) Result {
	r := c.Run(ctx, "", "python", "-c", "import torch")
	if r.Err == nil {
		return result("torch", fmt.Errorf("import torch succeeded in an image that must not have torch"), "")
	}
	if !strings.Contains(r.Stderr, "No module named 'torch'") {
		return result("torch", fmt.Errorf("import torch failed, but not because torch is absent: %s", tail(r.Stderr, 300)), "")
	}
	return result("torch", nil, "import torch fails: No module named 'torch'")
}

const distsPy = `import importlib.metadata as m, json
names = sorted({(d.metadata["Name"] or "").lower() for d in m.distributions()})
`

func checkCPUTorch(ctx context.Context, c *Container) Result {
	var v struct {
		Version string   `json:"version"`
		CUDA    *string  `json:"cuda"`
		Bad     []string `json:"bad"`
		Count   int      `json:"count"`
	}
	code := distsPy + `import torch
bad = [n for n in names if n.startswith("nvidia-") or n == "triton"]
print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda, "bad": bad, "count": len(names)}))`
	if err := c.JSON(ctx, code, &v); err != nil {
		return result("torch", fmt.Errorf("import torch: %w", err), "")
	}
	if v.CUDA != nil {
		return result("torch", fmt.Errorf("torch %s is a CUDA build (torch.version.cuda = %s)", v.Version, *v.CUDA), "")
	}
	if len(v.Bad) > 0 {
		return result("torch", fmt.Errorf("CUDA packages installed: %s", strings.Join(v.Bad, ", ")), "")
	}
	return result("torch", nil, fmt.Sprintf("torch %s imports, torch.version.cuda = None, no nvidia-*/triton among %d distributions", v.Version, v.Count))
}

// cudaPy inspects torch's CUDA build without importing it (cuDNN and the
// driver are absent here): version.py, libtorch_cuda.so and what its NEEDED
// libraries resolve to, and how many copies of the CUDA runtime exist.
const cudaPy = cudaCopiesPy + `
import importlib.util, json, os, re, subprocess, glob
spec = importlib.util.find_spec("torch")
root = list(spec.submodule_search_locations)[0]
src = open(os.path.join(root, "version.py")).read()
m = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", src, re.M)
libs = sorted(glob.glob(os.path.join(root, "lib", "libtorch_cuda.so*")))
if not libs:
    libs = sorted(p for p in subprocess.run(["find", "/", "-xdev", "-name", "libtorch_cuda.so*"], capture_output=True, text=True).stdout.split() if p)
missing = []
where = None
if libs:
    out = subprocess.run(["ldd", libs[0]], capture_output=True, text=True).stdout
    missing = sorted({l.split()[0] for l in out.splitlines() if "not found" in l})
    for l in out.splitlines():
        f = l.split()
        if len(f) >= 3 and f[1] == "=>" and f[0].startswith("libcudart.so"):
            where = os.path.dirname(f[2])
copies = cuda_copies("/")
gpu = os.path.exists("/dev/nvidia0")
avail = None
if gpu:
    import torch
    avail = torch.cuda.is_available()
print(json.dumps({"cuda": m.group(1) if m else None, "lib": libs[0] if libs else None, "missing": missing, "copies": copies, "gpu": gpu, "available": avail, "cudart": where}))`

func checkCUDATorch(ctx context.Context, c *Container) Result {
	var v struct {
		CUDA      *string             `json:"cuda"`
		Lib       *string             `json:"lib"`
		Missing   []string            `json:"missing"`
		Copies    map[string][]string `json:"copies"`
		GPU       bool                `json:"gpu"`
		Available *bool               `json:"available"`
		CUDART    *string             `json:"cudart"`
	}
	if err := c.JSON(ctx, cudaPy, &v); err != nil {
		return result("torch", fmt.Errorf("inspecting torch: %w", err), "")
	}
	if v.CUDA == nil {
		return result("torch", fmt.Errorf("torch/version.py reports no CUDA version: not a CUDA build"), "")
	}
	if v.Lib == nil {
		return result("torch", fmt.Errorf("libtorch_cuda.so not found"), "")
	}
	for _, m := range v.Missing {
		if !strings.HasPrefix(m, "libcudnn") && m != "libcuda.so.1" {
			return result("torch", fmt.Errorf("%s needs %s, which the image lacks (only cuDNN and the driver's libcuda.so.1 may be missing)", *v.Lib, m), "")
		}
	}
	if err := duplicateCUDALibraries(v.Copies); err != nil {
		return result("torch", err, "")
	}
	if len(v.Copies) == 0 {
		return result("torch", fmt.Errorf("no CUDA library found in the image (libcudart, libcublas, ...)"), "")
	}
	if v.CUDART == nil {
		return result("torch", fmt.Errorf("%s does not find libcudart.so.12 in the image", *v.Lib), "")
	}
	detail := fmt.Sprintf("CUDA %s build by its files: %s present, libcudart from %s, unresolved NEEDED only %v, one copy of each of %d CUDA libraries (%s)", *v.CUDA, *v.Lib, *v.CUDART, v.Missing, len(v.Copies), strings.Join(cudaLibraryNames(v.Copies), " "))
	if v.GPU && v.Available != nil {
		detail += fmt.Sprintf("; GPU host: torch.cuda.is_available() = %v", *v.Available)
	} else {
		detail += "; no GPU here, so import torch (needs cuDNN) and torch.cuda.is_available() need a GPU host"
	}
	return result("torch", nil, detail)
}

func checkTool(ctx context.Context, c *Container, tool []string) Result {
	name := "tool " + tool[0]
	r := c.Run(ctx, "", tool...)
	if r.Err != nil {
		return result(name, fmt.Errorf("%s: %v: %s", strings.Join(tool, " "), r.Err, tail(r.Stderr+r.Stdout, 300)), "")
	}
	first, _, _ := strings.Cut(strings.TrimSpace(r.Stdout+r.Stderr), "\n")
	return result(name, nil, tail(first, 120))
}

// checkCommand runs the image's check command as its user, in its env and
// workdir.
func checkCommand(ctx context.Context, c *Container, cmd []string) Result {
	name := "check " + strings.Join(cmd, " ")
	r := c.Run(ctx, "", cmd...)
	if r.Err != nil {
		return result(name, fmt.Errorf("%v: %s", r.Err, tail(r.Stderr+r.Stdout, 400)), "")
	}
	return result(name, nil, "exit 0: "+tail(lastLine(strings.TrimSpace(r.Stdout+r.Stderr)), 160))
}

func checkHealth(ctx context.Context, c *Container, spec Spec) Result {
	name := fmt.Sprintf("serve GET :%d%s", spec.Port, spec.HealthPath)
	stop, err := c.Serve(ctx)
	if err != nil {
		return result(name, err, "")
	}
	timeout := spec.ServerTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	body, err := c.HTTPGet(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", spec.Port, spec.HealthPath), timeout)
	logs := stop()
	if err != nil {
		return result(name, fmt.Errorf("%v; server output: %s", err, logs), "")
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		return result(name, fmt.Errorf("body %q is not JSON: %v", tail(body, 200), err), "")
	}
	for k, want := range spec.HealthExpect {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			return result(name, fmt.Errorf("body %s: %s is %v, want %v", tail(body, 200), k, got[k], want), "")
		}
	}
	return result(name, nil, "200 "+tail(strings.TrimSpace(body), 160))
}
