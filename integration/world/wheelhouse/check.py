#!/usr/bin/env python3
"""Check the repacked wheels in a bare base image with no network.

  check.py cpu  --wheels DIR --report FILE
      install every wheel of the default and CPU indexes with pip (no index,
      no dependencies) into a venv of the bare python base, run `pip check`,
      import every top-level module, and check torch is the CPU build.

  check.py unpack --wheels DIR --platform TAG --target DIR --report FILE
      install the CPU wheels (as `cpu` does) for another platform into DIR
      and byte-compile them, natively: pip unpacks wheels the same on any
      machine and bytecode is the same on every machine, while under QEMU
      unpacking torch took most of the arm64 check (13.8 minutes here).
      `cpu --site DIR` then checks them on the target, emulated: only the
      venv, `pip check` and the imports run there.

  check.py cuda --wheels DIR --deps DIR --report FILE
      install the CUDA torch wheel, the nvidia-* wheels and torch's other
      dependencies into a venv of the bare python base (no CUDA in it). It
      cannot be imported here (cuDNN is a stand-in and there is no driver),
      so check its files instead: torch/version.py names a CUDA version,
      libtorch_cuda.so is there, every library any ELF file needs resolves
      except cuDNN and the driver's libcuda.so.1, each CUDA library from its
      nvidia-* wheel (site-packages/nvidia/X/lib), and none is there twice.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys

VENV = "/tmp/venv"
PY = VENV + "/bin/python"
ALLOWED_MISSING = re.compile(r"^(libcudnn.*|libcuda\.so\.1)$")


def sh(*cmd):
    env = {"PATH": VENV + "/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
           "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return p.returncode, p.stdout + p.stderr


def manifests(wheels, flavour):
    out = []
    for p in sorted(glob.glob(os.path.join(wheels, "manifests", "*.json"))):
        m = json.load(open(p))
        # A second release of a locked project (the benchmark's bump) is
        # served beside it; the locked set is what is checked.
        if m["flavour"] == flavour and not m.get("alternate"):
            out.append(m)
    return out


def venv(report, files, site=None):
    rc, out = sh("python3", "-m", "venv", VENV)
    if rc:
        report.append("venv: " + out)
        return False
    if site:
        # Unpacked natively for this platform (check.py unpack): the venv
        # sees them through a .pth file, as if installed in it.
        rc, purelib = sh(PY, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        if rc:
            report.append("venv: " + purelib)
            return False
        open(os.path.join(purelib.strip(), "unpacked.pth"), "w").write(site + "\n")
        report.append("$ %d wheels unpacked natively into %s, on the venv's path" % (len(files), site))
        return True
    # --no-compile: no .pyc is needed to import, and byte-compiling torch
    # under QEMU (the arm64 check) took longer than everything else.
    rc, out = sh(PY, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", *files)
    report.append("$ pip install --no-index --no-deps (%d wheels)\n%s" % (len(files), out.strip()[-3000:]))
    return rc == 0


def unpack(args, report):
    files = [os.path.join(args.wheels, m["file"]) for m in manifests(args.wheels, "cpu")]
    rc, out = sh("python3", "-m", "venv", VENV)
    if rc:
        report.append("venv: " + out)
        return False
    rc, out = sh(PY, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile",
                 "--platform", args.platform, "--target", args.target, *files)
    report.append("$ pip install --no-index --no-deps --platform %s --target %s (%d wheels)\n%s"
                  % (args.platform, args.target, len(files), out.strip()[-3000:]))
    if rc != 0:
        return False
    # Byte-compile here too: bytecode does not depend on the machine, and
    # without it the emulated imports compile every module under QEMU
    # (scipy, pandas, torch: most of the check). unchecked-hash: the .pyc
    # is used as it is, whatever the files' times on the target.
    rc, out = sh("python3", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", args.target)
    report.append("$ compileall %s: exit %d\n%s" % (args.target, rc, out.strip()[-2000:]))
    return True


def check_cpu(args, report):
    ms = [m for m in manifests(args.wheels, "cpu")]
    files = [os.path.join(args.wheels, m["file"]) for m in ms]
    if not venv(report, files, args.site):
        return False
    ok = True
    rc, out = sh(PY, "-m", "pip", "check")
    report.append("$ pip check\n" + out.strip())
    ok &= rc == 0
    names = sorted({i for m in ms for i in m["imports"]})
    code = (
        "import importlib, json, sys\n"
        "bad = {}\n"
        "for n in %r:\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as e:\n"
        "        bad[n] = '%%s: %%s' %% (type(e).__name__, e)\n"
        "import torch\n"
        "print(json.dumps({'failed': bad, 'torch': torch.__version__, 'cuda': torch.version.cuda,\n"
        "    'matmul': float(torch.ones(2, 2).matmul(torch.ones(2, 2)).sum())}))\n" % names
    )
    rc, out = sh(PY, "-c", code)
    report.append("$ import %d modules: %s\n%s" % (len(names), " ".join(names), out.strip()))
    if rc != 0:
        # The interpreter died: import each module in a process of its own,
        # so the report names the ones that cannot be imported.
        bad = {}
        for n in names:
            rc1, out1 = sh(PY, "-c", "import importlib; importlib.import_module(%r)" % n)
            if rc1 != 0:
                bad[n] = out1.strip()[-300:]
        report.append("FAILED: importing all %d modules in one interpreter died (exit %d); alone, these fail: %s"
                      % (len(names), rc, bad or "none"))
        return False
    res = json.loads(out.strip().splitlines()[-1])
    if res["failed"]:
        report.append("FAILED imports: %s" % res["failed"])
        ok = False
    if res["cuda"] is not None or not res["torch"].endswith("+cpu") or res["matmul"] != 8.0:
        report.append("FAILED: torch is not a working CPU build: %s" % res)
        ok = False
    return ok


def check_cuda(args, report):
    ms = manifests(args.wheels, "cuda")
    torch = [m for m in ms if m["name"] == "torch"]
    if len(torch) != 1:
        report.append("FAILED: expected one CUDA torch wheel, found %d" % len(torch))
        return False
    deps = {"filelock", "typing-extensions", "setuptools", "sympy", "mpmath", "networkx", "jinja2",
            "markupsafe", "fsspec", "numpy"}
    files = [os.path.join(args.wheels, m["file"]) for m in ms]
    files += [os.path.join(args.deps, m["file"]) for m in manifests(args.deps, "cpu") if m["name"] in deps]
    if not venv(report, files):
        return False
    site = glob.glob(VENV + "/lib/python3*/site-packages")[0]
    ok = True
    rc, out = sh(PY, "-m", "pip", "check")
    report.append("$ pip check\n" + out.strip())
    ok &= rc == 0
    version_py = open(os.path.join(site, "torch", "version.py")).read()
    m = re.search(r"^cuda(?::\s*\S+)?\s*=\s*['\"]([^'\"]+)['\"]", version_py, re.M)
    report.append("torch/version.py:\n" + version_py.strip())
    if not m:
        report.append("FAILED: torch/version.py names no CUDA version")
        ok = False
    elif args.cuda_version and not m.group(1).startswith(args.cuda_version):
        report.append("FAILED: torch/version.py names CUDA %s, expected %s" % (m.group(1), args.cuda_version))
        ok = False
    libcuda = glob.glob(os.path.join(site, "torch", "lib", "libtorch_cuda.so*"))
    report.append("libtorch_cuda.so: %s" % (libcuda or "MISSING"))
    ok &= bool(libcuda)
    # Every library an nvidia-* wheel provides must be found in that wheel
    # (site-packages/nvidia/X/lib), never elsewhere, and exist once.
    provided = {}
    for mm in ms:
        for lib in mm.get("libs", []):
            provided[lib] = os.path.join(site, mm["lib_dir"], lib)
    elfs = []
    for root, _, names in os.walk(site):
        for n in names:
            p = os.path.join(root, n)
            if (n.endswith(".so") or ".so." in n) and open(p, "rb").read(4) == b"\x7fELF":
                elfs.append(p)
    missing, wrong = {}, {}
    for p in elfs:
        _, out = sh("ldd", p)
        for line in out.splitlines():
            mm = re.match(r"^\s*(\S+) => (not found|(\S+) \(0x[0-9a-f]+\))$", line.strip())
            if not mm:
                continue
            lib, where = mm.group(1), mm.group(3)
            if where is None:
                if not ALLOWED_MISSING.match(lib):
                    missing.setdefault(lib, []).append(os.path.relpath(p, site))
            elif lib in provided and os.path.realpath(where) != os.path.realpath(provided[lib]):
                wrong.setdefault(lib, set()).add(where)
    report.append("ldd over %d ELF files: unresolved other than cuDNN and libcuda.so.1: %s" % (len(elfs), missing or "none"))
    report.append("CUDA libraries resolved outside their nvidia-* wheel: %s" % ({k: sorted(v) for k, v in wrong.items()} or "none"))
    ok &= not missing and not wrong
    copies = {}
    for p in elfs:
        copies.setdefault(os.path.basename(p), []).append(os.path.relpath(p, site))
    twice = {k: v for k, v in copies.items() if len(v) > 1 and (k.startswith("libcu") or k.startswith("libnv") or k.startswith("libnccl"))}
    report.append("CUDA libraries present twice: %s" % (twice or "none"))
    ok &= not twice
    report.append("nvidia-* wheels: %s" % ", ".join("%s %s (%s)" % (mm["name"], mm["version"], " ".join(mm.get("libs", [])) or "stand-in: no library")
                                                for mm in ms if mm["name"] != "torch"))
    return ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("flavour", choices=["cpu", "cuda", "unpack"])
    p.add_argument("--wheels", required=True)
    p.add_argument("--deps")
    p.add_argument("--cuda-version", default="")
    p.add_argument("--site", help="cpu: the wheels were unpacked natively into this directory")
    p.add_argument("--platform", help="unpack: the wheels' platform tag (linux_aarch64)")
    p.add_argument("--target", help="unpack: the directory to unpack into")
    p.add_argument("--report", required=True)
    args = p.parse_args()
    report = []
    if args.flavour == "unpack" and not (args.platform and args.target):
        p.error("unpack needs --platform and --target")
    ok = {"cpu": check_cpu, "cuda": check_cuda, "unpack": unpack}[args.flavour](args, report)
    report.append("RESULT: %s" % ("ok" if ok else "FAILED"))
    text = "\n\n".join(report) + "\n"
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    open(args.report, "w").write(text)
    print(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
