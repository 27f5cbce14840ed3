package llb

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// Pip installs with pip: an exact set of pins per layer, --no-deps (the lock
// already resolved them, as pip-sync users do), with --require-hashes when
// every pin of a group carries hashes. pip itself lives in its own venv in
// the builder, outside the app dir, and drives the app venv with --python.
type Pip struct {
	// Home is where pip's own venv goes; /opt/pip when empty.
	Home string
}

// Name implements Installer.
func (Pip) Name() string { return "pip" }

func (p Pip) home() string {
	if p.Home == "" {
		return "/opt/pip"
	}
	return p.Home
}

func (p Pip) pip(env Env) string {
	return p.home() + "/bin/pip --python " + ShellQuote(env.VenvDir+"/bin/python") + " --disable-pip-version-check --no-input"
}

// Prepare implements Installer: a venv with pip from the interpreter's own
// ensurepip, so no network is needed to get pip.
func (p Pip) Prepare(builder llb.State, env Env) llb.State {
	opts := append(env.stepEnv(),
		shell(fmt.Sprintf("%s -m venv %s", ShellQuote(env.Python), p.home())),
		llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
		llb.WithCustomNamef("[builder] installer: pip in %s", p.home()),
	)
	return builder.Run(opts...).Root()
}

func (p Pip) cache(env Env) llb.RunOption {
	return cacheMount("/tmp/.pip-cache", env.CacheID("pip", "pkgs", env.PlatformKey()), env.User, env.Build)
}

// install is pip's install command: --no-compile unless bytecode is asked
// for.
func (p Pip) install(env Env) string {
	cmd := p.pip(env) + " install --no-deps --cache-dir /tmp/.pip-cache"
	if !env.CompileBytecode {
		cmd += " --no-compile"
	}
	return cmd
}

// Install implements Installer.
func (p Pip) Install(st llb.State, layer Layer, env Env) llb.State {
	if len(layer.Requirements) == 0 {
		return st
	}
	cmds := requirementFiles(layer, env, func(index string, hashes bool, file string) string {
		cmd := p.install(env)
		if hashes {
			cmd += " --require-hashes"
		}
		if index != "" {
			cmd += " --index-url " + ShellQuote(index)
		}
		return cmd + " -r " + file
	})
	opts := append(commonRun(env, layerName("pip install", layerTitle(layer)), strings.Join(cmds, " && ")),
		p.cache(env),
	)
	return st.Run(opts...).Root()
}

// reqsDir is where an install step writes its requirements files: on the
// step's /tmp tmpfs, so they never reach a layer.
const reqsDir = "/tmp/reqs"

// requirementFiles renders a layer's pins as requirements files, one per
// index (with --hash options when the lock records hashes), written by the
// install step itself, and returns the commands that write and install
// each: cmd(index, every pin hashed, path of the file). A pin of the
// default index takes env.IndexURL. Writing them in the step (not as file
// ops mounted in) keeps each layer one vertex, whose digest is its pins.
func requirementFiles(layer Layer, env Env, cmd func(index string, hashes bool, file string) string) []string {
	keys, groups := byIndex(layer.Requirements)
	cmds := []string{"mkdir -p " + reqsDir}
	for i, ix := range keys {
		reqs := groups[ix]
		hashes := true
		var lines []string
		for _, r := range reqs {
			line := r.Spec()
			if len(r.Hashes) == 0 {
				hashes = false
			}
			for _, h := range r.Hashes {
				line += " --hash=" + h
			}
			lines = append(lines, ShellQuote(line))
		}
		file := fmt.Sprintf("%s/requirements-%d.txt", reqsDir, i)
		cmds = append(cmds, "printf '%s\\n' "+strings.Join(lines, " ")+" > "+file)
		index := ix
		if index == "" {
			index = env.IndexURL
		}
		cmds = append(cmds, cmd(index, hashes, file))
	}
	return cmds
}

// InstallProject implements Installer: pip builds the project at AppDir
// with its PEP 517 backend, fetched from the same index, in isolation.
func (p Pip) InstallProject(st llb.State, env Env) llb.State {
	cmd := p.install(env)
	if env.IndexURL != "" {
		cmd += " --index-url " + ShellQuote(env.IndexURL)
	}
	cmd += " " + ShellQuote(env.AppDir)
	opts := append(commonRun(env, "[builder] pip install the project", cmd),
		p.cache(env),
	)
	return st.Run(opts...).Root()
}
