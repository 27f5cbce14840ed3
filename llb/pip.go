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
	return p.home() + "/bin/pip --python " + shellQuote(env.VenvDir+"/bin/python") + " --disable-pip-version-check --no-input"
}

// Prepare implements Installer: a venv with pip from the interpreter's own
// ensurepip, so no network is needed to get pip.
func (p Pip) Prepare(builder llb.State, env Env) llb.State {
	opts := append(env.stepEnv(),
		shell(fmt.Sprintf("%s -m venv %s", shellQuote(env.Python), p.home())),
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
	files, cmds := requirementFiles(layer, env, func(index string, hashes bool, file string) string {
		cmd := p.install(env)
		if hashes {
			cmd += " --require-hashes"
		}
		if index != "" {
			cmd += " --index-url " + shellQuote(index)
		}
		return cmd + " -r " + file
	})
	opts := append(commonRun(env, layerName("pip install", layerTitle(layer))),
		shell(strings.Join(cmds, " && ")),
		llb.AddMount(depMount+"/reqs", files, llb.Readonly),
		p.cache(env),
	)
	return st.Run(opts...).Root()
}

// requirementFiles writes a layer's pins as requirements files, one per
// index (with --hash options when the lock records hashes), and returns
// them as a state to mount at depMount/reqs and the command that installs
// each: cmd(index, every pin hashed, path of the file). A pin of the
// default index takes env.IndexURL.
func requirementFiles(layer Layer, env Env, cmd func(index string, hashes bool, file string) string) (llb.State, []string) {
	keys, groups := byIndex(layer.Requirements)
	files := llb.Scratch()
	var cmds []string
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
			lines = append(lines, line)
		}
		name := fmt.Sprintf("requirements-%d.txt", i)
		files = files.File(llb.Mkfile("/"+name, 0o644, []byte(strings.Join(lines, "\n")+"\n"), mkfileOpts(env.Build)...),
			llb.WithCustomNamef("[builder] %s of layer %s", name, layer.Name))
		index := ix
		if index == "" {
			index = env.IndexURL
		}
		cmds = append(cmds, cmd(index, hashes, depMount+"/reqs/"+name))
	}
	return files, cmds
}

// InstallProject implements Installer: pip builds the project at AppDir
// with its PEP 517 backend, fetched from the same index, in isolation.
func (p Pip) InstallProject(st llb.State, env Env) llb.State {
	cmd := p.install(env)
	if env.IndexURL != "" {
		cmd += " --index-url " + shellQuote(env.IndexURL)
	}
	cmd += " " + shellQuote(env.AppDir)
	opts := append(commonRun(env, "[builder] pip install the project"),
		shell(cmd),
		p.cache(env),
	)
	return st.Run(opts...).Root()
}
