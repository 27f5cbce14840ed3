#!/usr/bin/env python3
"""Prepare the CUDA torch repack (ktrdr-images integration/world).

  prepare_cuda.py DEB...

Runs in the CUDA base, with network: downloads the given Debian packages
(python3-torch-cuda and libtorch-cuda-2.6), installs with apt the libraries
they need except what cannot be had here (cuDNN is not in Debian's archive;
libcuda.so.1 comes from the host's NVIDIA driver) and the Python packages
(the index has them as wheels), then unpacks them with dpkg despite those
missing dependencies.
"""

import os
import re
import shutil
import subprocess
import sys

SKIP = re.compile(r"^(python3.*|libtorch-cuda-.*|nvidia-cudnn.*|libcudnn.*|libcuda1|libcuda\.so\.1|libnvidia-.*)$")


def first_alternatives(depends):
    out = []
    for dep in depends.split(","):
        alt = dep.split("|")[0].strip()
        out.append(re.split(r"[\s(:]", alt, maxsplit=1)[0])
    return out


def main(debs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    os.makedirs("/tmp/debs", exist_ok=True)
    subprocess.run(["apt-get", "download"] + debs, check=True, cwd="/tmp/debs", env=env)
    files = sorted(os.listdir("/tmp/debs"))
    wanted = set()
    for f in files:
        depends = subprocess.run(["dpkg-deb", "-f", os.path.join("/tmp/debs", f), "Depends"],
                                 check=True, capture_output=True, text=True).stdout
        wanted.update(d for d in first_alternatives(depends) if d and not SKIP.match(d))
    print("prepare_cuda: installing the libraries torch-cuda needs:", " ".join(sorted(wanted)), flush=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "patchelf"] + sorted(wanted),
                   check=True, env=env)
    subprocess.run(["dpkg", "--force-depends", "-i"] + [os.path.join("/tmp/debs", f) for f in files],
                   check=True, env=env)
    shutil.rmtree("/tmp/debs")
    subprocess.run(["sh", "-c", "rm -rf /var/lib/apt/lists/*"], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
