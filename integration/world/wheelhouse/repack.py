#!/usr/bin/env python3
"""Repack installed Debian packages as wheels (ktrdr-images integration/world).

Runs inside BuildKit steps of the wheelhouse graph (wheelhouse.go):

  repack.py build --spec SPEC --flavour cpu|cuda --base /base --out /out
      for every wheel of the spec with that flavour, take the files the
      Debian packages installed under /usr/lib/python3/dist-packages, write
      a dist-info with the spec's version (Debian's metadata otherwise), copy
      every shared library the extension modules need that the bare base
      image (mounted at /base) lacks into NAME.libs/ with an $ORIGIN rpath,
      and write a deterministic wheel to /out/INDEX/PROJECT/.

The spec is JSON: {"sde": EPOCH, "python_tag": "cp313", "wheels": [{"name",
"version", "debs": [...], "index": "simple"|"whl/cpu"|"whl/cu124",
"flavour": "cpu"|"cuda", "libs_dir": DIR, "drop_requires": [...]}]}.
Bundled libraries go to NAME.libs/ (auditwheel's layout) or to libs_dir
(torch/lib, where PyPI's torch keeps its libraries).

Two more kinds of wheel (the "kind" key):
  "libs"     a wheel of shared libraries only, as NVIDIA's nvidia-*-cu12
             wheels on PyPI: every library the Debian packages install under
             /usr/lib/x86_64-linux-gnu goes to lib_dir (nvidia/cublas/lib...),
             named by its SONAME, with the nvidia/ namespace __init__.py files
             PyPI's wheels have;
  "standin"  a wheel that holds no library, plainly marked as a stand-in in
             its metadata and a STAND-IN.txt (cuDNN: Debian cannot ship it).
A library that a "libs" wheel of the spec provides is never bundled into
another wheel: the ELF file that needs it gets an $ORIGIN-relative rpath to
that wheel's lib_dir instead (torch/lib -> ../../nvidia/cublas/lib), as
PyPI's torch finds its nvidia-* wheels.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import sysconfig
import zipfile

DIST = "/usr/lib/python3/dist-packages/"
ALLOWED_MISSING = {
    # Not obtainable here: cuDNN is not in Debian's archive, libcuda.so.1
    # comes from the host's NVIDIA driver at run time.
    "cuda": re.compile(r"^(libcudnn.*|libcuda\.so\.1)$"),
}


def log(*args):
    print("repack:", *args, flush=True)


def fail(msg):
    print("repack: ERROR:", msg, file=sys.stderr, flush=True)
    sys.exit(1)


def run(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        fail("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def under(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def release(version):
    m = re.match(r"\d+(\.\d+)*", version)
    return m.group(0) if m else version


# ---------------------------------------------------------------- metadata

def parse_headers(text):
    """Split RFC 822 style metadata into [(key, value)] and the body."""
    head, sep, body = text.partition("\n\n")
    items = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and items:
            items[-1][1] += "\n" + line
        elif ":" in line:
            k, v = line.split(":", 1)
            items.append([k, v.strip()])
    return items, body if sep else ""


def requires_txt(text):
    """Turn setuptools' requires.txt into (Requires-Dist values, extras)."""
    out, extras = [], []
    extra, marker = None, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line[1:-1]
            extra, _, marker = section.partition(":")
            extra = extra or None
            marker = marker or None
            if extra and extra not in extras:
                extras.append(extra)
            continue
        conds = []
        if marker:
            conds.append("(%s)" % marker)
        if extra:
            conds.append('extra == "%s"' % extra)
        out.append(line + ("; " + " and ".join(conds) if conds else ""))
    return out, extras


REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def rewrite_requirement(req, versions, drop):
    """Rewrite == pins to the versions the index serves; None drops it."""
    spec, semi, marker = req.partition(";")
    m = REQ.match(spec)
    if not m:
        return req
    name, extras, constraint = m.group(1), m.group(2) or "", m.group(3).strip()
    if norm(name) in drop:
        return None
    served = versions.get(norm(name))
    if served and "==" in constraint:
        pinned = re.search(r"==\s*([^,\s]+)", constraint).group(1)
        if release(pinned) != release(served):
            constraint = re.sub(r"==\s*[^,\s]+", "==" + served, constraint)
    out = name + extras + (" " + constraint if constraint else "")
    return out + (";" + marker if semi else "")


def metadata_for(wheel, meta_src, versions):
    """Build METADATA: Debian's, with the spec's version and fixed pins."""
    if os.path.isdir(meta_src):
        for n in ("METADATA", "PKG-INFO"):
            p = os.path.join(meta_src, n)
            if os.path.exists(p):
                text = open(p, encoding="utf-8").read()
                break
        else:
            fail("%s: no METADATA or PKG-INFO" % meta_src)
    else:
        text = open(meta_src, encoding="utf-8").read()
    items, body = parse_headers(text)
    reqs = [v for k, v in items if k == "Requires-Dist"]
    extras = [v for k, v in items if k == "Provides-Extra"]
    rt = os.path.join(meta_src, "requires.txt")
    if not reqs and os.path.isdir(meta_src) and os.path.exists(rt):
        reqs, more = requires_txt(open(rt, encoding="utf-8").read())
        extras += [e for e in more if e not in extras]
    drop = {norm(d) for d in wheel.get("drop_requires", [])}
    new_reqs = []
    for r in reqs:
        r2 = rewrite_requirement(r, versions, drop)
        if r2 is not None:
            new_reqs.append(r2)
    new_reqs += wheel.get("add_requires", [])
    debian_version = next((v for k, v in items if k == "Version"), "")
    out = []
    seen_extra = False
    for k, v in items:
        if k == "Metadata-Version":
            v = v if tuple(int(x) for x in v.split(".")[:2]) >= (2, 1) else "2.1"
        elif k == "Version":
            v = wheel["full_version"]
        elif k in ("Requires-Dist", "Provides-Extra"):
            if not seen_extra:
                seen_extra = True
                out += [("Provides-Extra", e) for e in extras]
                out += [("Requires-Dist", r) for r in new_reqs]
            continue
        out.append((k, v))
    if not seen_extra:
        out += [("Provides-Extra", e) for e in extras]
        out += [("Requires-Dist", r) for r in new_reqs]
    text = "".join("%s: %s\n" % (k, v) for k, v in out)
    if body:
        text += "\n" + body
    return text, debian_version


# ---------------------------------------------------------------- ELF

def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


_ldd = {}


def ldd(path):
    if path not in _ldd:
        res = {}
        for line in run("ldd", path, check=False).splitlines():
            line = line.strip()
            m = re.match(r"^(\S+) => (not found|(\S+) \(0x[0-9a-f]+\))$", line)
            if m:
                res[m.group(1)] = m.group(3)  # None when not found
        _ldd[path] = res
    return _ldd[path]


def patchelf(*args):
    run("patchelf", *args)


# Sections patchelf may move when it grows the dynamic-linking data (the
# loader finds them through the program headers and .dynamic, which it
# rewrites). Any other allocated section that moves breaks the library:
# its code still addresses the old place.
MOVABLE = re.compile(r"^(\.interp|\.dynamic|\.dynstr|\.dynsym|\.hash|\.gnu\.hash|\.gnu\.version(_r|_d)?|\.note(\..*)?)$")


def alloc_sections(path):
    """The allocated sections of an ELF64 little-endian file: {name: address}."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            return None  # not ELF64 LE: nothing to compare
        shoff, = struct.unpack_from("<Q", ident, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ident, 0x3A)
        f.seek(shoff)
        raw = f.read(shentsize * shnum)
        hdrs = [struct.unpack_from("<IIQQQQ", raw, i * shentsize) for i in range(shnum)]
        if shstrndx >= len(hdrs):
            return None
        f.seek(hdrs[shstrndx][4])
        names = f.read(hdrs[shstrndx][5])
    out = {}
    for name_off, _type, flags, addr, _off, _size in hdrs:
        if flags & 2:  # SHF_ALLOC
            out[names[name_off:names.index(b"\0", name_off)].decode("latin-1")] = addr
    return out


def moved_sections(before, after):
    """The allocated sections, other than the dynamic-linking ones, that are
    gone or at another address after patchelf."""
    if before is None or after is None:
        return []
    return sorted(n for n, a in before.items() if not MOVABLE.match(n) and after.get(n) != a)


# ---------------------------------------------------------------- build

def dpkg_files(pkg):
    out = run("dpkg-query", "-L", pkg)
    return [l for l in out.splitlines() if l.startswith(DIST)]


# The architecture's library directory and wheel platform tag: this runs
# natively for amd64 and under QEMU for arm64 (uname -m says aarch64 there).
LIBDIR = "/usr/lib/%s/" % sysconfig.get_config_var("MULTIARCH")
PLATFORM_TAG = "linux_" + os.uname().machine
# The stage's architecture (--arch): manifests of arm64 wheels are named
# apart, so both stages' outputs merge into one index.
ARCH = "amd64"


def manifest_suffix():
    return "" if ARCH == "amd64" else "-" + ARCH


def deb_version(pkg):
    return run("dpkg-query", "-W", "-f", "${Version}", pkg).strip()


def check_deb_versions(wheel):
    """A libs wheel's version must be the upstream version of its Debian
    packages (libcublas12 12.4.5.8~12.4.1-2 for nvidia-cublas-cu12 12.4.5.8)."""
    v = wheel["version"]
    for deb in wheel["debs"]:
        dv = deb_version(deb)
        if not re.search(r"(^|[~+])" + re.escape(v) + r"([~+-]|$)", dv):
            fail("%s %s: Debian's %s is %s, which is not that version: the archive moved on; update the spec"
                 % (wheel["name"], v, deb, dv))


def deb_libraries(wheel):
    """The shared libraries of a libs wheel's packages: {soname: real path}."""
    libs = {}
    for deb in wheel["debs"]:
        for path in run("dpkg-query", "-L", deb).splitlines():
            if not path.startswith(LIBDIR) or ".so" not in os.path.basename(path):
                continue
            real = os.path.realpath(path)
            if not os.path.isfile(real) or not is_elf(real):
                continue
            soname = run("patchelf", "--print-soname", real, check=False).strip() or os.path.basename(real)
            libs.setdefault(soname, real)
    if not libs:
        fail("%s: packages %s install no shared library under %s" % (wheel["name"], wheel["debs"], LIBDIR))
    return libs


def provided_libraries(spec, flavour):
    """{soname: lib_dir} of every libs wheel of this flavour."""
    out = {}
    for w in spec["wheels"]:
        if w.get("kind") == "libs" and w["flavour"] == flavour:
            for soname in deb_libraries(w):
                out[soname] = w["lib_dir"]
    return out


def namespace_files(stage, lib_dir):
    """nvidia/__init__.py, nvidia/X/__init__.py, nvidia/X/lib/__init__.py:
    empty, as NVIDIA's wheels have them (one namespace, many wheels)."""
    parts = lib_dir.split("/")
    for i in range(1, len(parts) + 1):
        d = os.path.join(stage, *parts[:i])
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "__init__.py"), "w").close()


def lib_metadata(wheel):
    lines = ["Metadata-Version: 2.1", "Name: " + wheel["name"], "Version: " + wheel["full_version"],
             "Summary: " + wheel["summary"], "License-Expression: LicenseRef-NVIDIA-Proprietary",
             "Requires-Python: >=3"]
    lines += ["Requires-Dist: " + r for r in wheel.get("add_requires", [])]
    return "\n".join(lines) + "\n"


def place_needed(name, rel, n, resolved, provided, base, missing_ok):
    """Where the library n that the ELF file rel NEEDs comes from:
    ("rpath", DIR) when an nvidia-* wheel provides it (an $ORIGIN-relative
    rpath into that wheel), ("none", None) when the bare base image has it
    or it may be missing here, ("bundle", REALPATH) when the wheel must carry
    a copy."""
    if n.startswith("ld-linux"):
        return "none", None  # the dynamic loader itself
    if n in provided:
        # An nvidia-* wheel has it: find it there, as PyPI's torch does.
        return "rpath", "$ORIGIN/" + os.path.relpath(provided[n], os.path.dirname(rel) or ".")
    p = resolved.get(n)
    if p is None:
        if missing_ok and missing_ok.match(n):
            return "none", None
        fail("%s: %s needs %s, which is not installed" % (name, rel, n))
    if os.path.exists(base + p):
        return "none", None  # the bare base image has it
    return "bundle", os.path.realpath(p)


def build_wheel(wheel, versions, base, out, sde, python_tag, flavour, provided):
    name = wheel["name"]
    kind = wheel.get("kind", "python")
    if kind in ("libs", "standin"):
        return build_lib_wheel(wheel, base, out, sde, flavour, provided)
    full_version = wheel["full_version"]
    stage = "/tmp/stage/" + under(name)
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    files = {}  # rel -> source path (resolved)
    meta_src = None
    meta_dirs = []
    dropped = []
    for deb in wheel["debs"]:
        for path in dpkg_files(deb):
            rel = path[len(DIST):]
            top = rel.split("/", 1)[0]
            if re.search(r"\.(dist|egg)-info$", top):
                if norm(re.split(r"-\d", top, maxsplit=1)[0]) == norm(name):
                    meta_src = DIST + top
                if top not in meta_dirs:
                    meta_dirs.append(top)
                continue
            if "/__pycache__/" in path or path.endswith(".pyc"):
                continue
            if os.path.islink(path):
                target = os.path.realpath(path)
                if not os.path.isfile(target):
                    dropped.append(rel)
                    continue
                files[rel] = target
            elif os.path.isfile(path):
                files[rel] = path
    # Packages Debian unvendored go back under the vendor directory, where
    # the upstream wheel has them (setuptools/_vendor).
    for deb in wheel.get("vendor", []):
        for path in dpkg_files(deb):
            if "/__pycache__/" in path or path.endswith(".pyc") or not os.path.isfile(path):
                continue
            files[wheel["vendor_dir"] + "/" + path[len(DIST):]] = os.path.realpath(path)
    if meta_src is None:
        fail("%s: no dist-info/egg-info for %s in %s (found %s)" % (name, name, wheel["debs"], meta_dirs))
    metadata, debian_version = metadata_for(wheel, meta_src, versions)
    if release(debian_version) != release(wheel["version"]):
        fail("%s: Debian ships %s (%s), the spec wants %s: the archive moved on; update the lock and the spec"
             % (name, debian_version, ",".join(wheel["debs"]), wheel["version"]))

    real_to_rel = {}
    for rel, src in sorted(files.items()):
        dst = os.path.join(stage, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755 if os.stat(src).st_mode & 0o111 else 0o644)
        real_to_rel.setdefault(os.path.realpath(src), rel)
    if wheel.get("version_py"):
        # The version the package reports at run time is the wheel's
        # (torch.__version__ == "2.6.0+cpu", not Debian's "2.6.0+debian").
        vp = os.path.join(stage, wheel["version_py"])
        text = open(vp, encoding="utf-8").read()
        runtime_version = wheel.get("runtime_version") or full_version
        text, n = re.subn(r"^__version__(\s*(?::[^=]*)?=\s*)['\"][^'\"]*['\"]",
                          lambda m: "__version__%s'%s'" % (m.group(1), runtime_version), text, flags=re.M)
        if n != 1:
            fail("%s: no __version__ in %s" % (name, wheel["version_py"]))
        open(vp, "w", encoding="utf-8").write(text)

    # Shared libraries: bundle what the bare base lacks, point rpaths at it.
    libs_dir = wheel.get("libs_dir") or under(name) + ".libs"
    queue = [rel for rel in sorted(files) if is_elf(os.path.join(stage, rel))]
    origin = dict(files)
    bundled = []
    missing_ok = ALLOWED_MISSING.get(flavour)
    # What each ELF file needs changed: the NEEDED names to replace, its
    # soname, its rpaths ($ORIGIN-relative).
    edits = {}
    unpatched = {}  # rel -> the sections patchelf would have moved
    orig_dir = "/tmp/orig/" + under(name)
    shutil.rmtree(orig_dir, ignore_errors=True)

    def apply(rel, force_rpath=False, extra=()):
        """Apply rel's edits; undo them and return the sections patchelf
        moved if it moved any besides the dynamic-linking ones."""
        replace, soname, rpaths = edits[rel]
        rpaths = set(rpaths) | set(extra)
        if not (replace or soname or rpaths):
            return []
        path = os.path.join(stage, rel)
        saved = os.path.join(orig_dir, rel)
        if not os.path.exists(saved):
            os.makedirs(os.path.dirname(saved), exist_ok=True)
            shutil.copyfile(path, saved)
        else:
            shutil.copyfile(saved, path)
        before = alloc_sections(path)
        for n, new in replace:
            patchelf("--replace-needed", n, new, path)
        if soname:
            patchelf("--set-soname", soname, path)
        if rpaths:
            patchelf(*(["--force-rpath"] if force_rpath else []), "--set-rpath", ":".join(sorted(rpaths)), path)
        moved = moved_sections(before, alloc_sections(path))
        if moved:
            shutil.copyfile(saved, path)
        return moved

    i = 0
    while i < len(queue):
        rel = queue[i]
        i += 1
        path = os.path.join(stage, rel)
        needed = run("patchelf", "--print-needed", path).split()
        resolved = ldd(origin[rel])
        rpaths = set()
        replace = []
        for n in needed:
            how, where = place_needed(name, rel, n, resolved, provided, base, missing_ok)
            if how == "rpath":
                rpaths.add(where)
            if how != "bundle":
                continue
            real = where
            target = real_to_rel.get(real)
            if target is None:
                target = libs_dir + "/" + n
                dst = os.path.join(stage, target)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(real, dst)
                os.chmod(dst, 0o755)
                real_to_rel[real] = target
                origin[target] = real
                queue.append(target)
                bundled.append(n)
            if os.path.basename(target) != n:
                replace.append((n, os.path.basename(target)))
            d = os.path.relpath(os.path.dirname(target) or ".", os.path.dirname(rel) or ".")
            rpaths.add("$ORIGIN" if d == "." else "$ORIGIN/" + d)
        soname = run("patchelf", "--print-soname", path, check=False).strip()
        # A copy of a symlinked library: its name in the wheel is its name.
        new_soname = os.path.basename(rel) if soname and soname != os.path.basename(rel) and rel in files and files[rel] != DIST + rel else ""
        edits[rel] = (replace, new_soname, rpaths)
        moved = apply(rel)
        if moved:
            unpatched[rel] = moved
    if unpatched:
        # Measured on Debian's aarch64 libraries (libprotobuf, and torch's
        # own, which embed protobuf descriptors): to add an rpath, patchelf
        # grows the program headers and moves the sections right after them
        # (protodesc_cold) that the code addresses directly; the library
        # then fails at load ("Invalid file descriptor data passed to
        # EncodedDescriptorDatabase::Add()"). Those libraries stay as Debian
        # built them, with no rpath, and find their dependencies through the
        # loader's DT_RPATH search, which, unlike RUNPATH, is inherited
        # along the chain of objects that loaded them: every other ELF file
        # of the wheel gets a DT_RPATH naming its own directories and theirs.
        log("%s: left unpatched (patchelf would move %s); the rest of the wheel gets DT_RPATH"
            % (name, "; ".join("%s: %s" % (r, ", ".join(m)) for r, m in sorted(unpatched.items()))))
        while True:
            for rel in unpatched:
                if edits[rel][0]:
                    fail("%s: %s needs %s renamed, but patchelf would move %s of it"
                         % (name, rel, edits[rel][0], ", ".join(unpatched[rel])))
            dirs = set()
            for rel in unpatched:
                for r in edits[rel][2]:
                    dirs.add(os.path.normpath(os.path.join(os.path.dirname(rel), r.replace("$ORIGIN", "."))))
            more = {}
            for rel in queue:
                if rel in unpatched:
                    continue
                extra = set()
                for d in dirs:
                    rd = os.path.relpath(d, os.path.dirname(rel) or ".")
                    extra.add("$ORIGIN" if rd == "." else "$ORIGIN/" + rd)
                moved = apply(rel, force_rpath=True, extra=extra)
                if moved:
                    more[rel] = moved
            if not more:
                break
            unpatched.update(more)
    shutil.rmtree(orig_dir, ignore_errors=True)
    platform = bool(queue)

    # dist-info
    dist_info = "%s-%s.dist-info" % (under(name), full_version)
    di = os.path.join(stage, dist_info)
    os.makedirs(di)
    with open(os.path.join(di, "METADATA"), "w", encoding="utf-8") as f:
        f.write(metadata)
    tag = "%s-%s-%s" % (python_tag, python_tag, PLATFORM_TAG) if platform else "py3-none-any"
    with open(os.path.join(di, "WHEEL"), "w") as f:
        f.write("Wheel-Version: 1.0\nGenerator: ktrdr-images integration/world repack.py\n"
                "Root-Is-Purelib: %s\nTag: %s\n" % ("false" if platform else "true", tag))
    if os.path.isdir(meta_src):
        for extra in ("entry_points.txt", "top_level.txt"):
            if os.path.exists(os.path.join(meta_src, extra)):
                shutil.copyfile(os.path.join(meta_src, extra), os.path.join(di, extra))
        for lic in sorted(os.listdir(meta_src)):
            if re.match(r"^(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", lic, re.I) and os.path.isfile(os.path.join(meta_src, lic)):
                shutil.copyfile(os.path.join(meta_src, lic), os.path.join(di, lic))
        if os.path.isdir(os.path.join(meta_src, "licenses")):
            shutil.copytree(os.path.join(meta_src, "licenses"), os.path.join(di, "licenses"))

    # import names, for the check
    imports = []
    tl = os.path.join(di, "top_level.txt")
    if os.path.exists(tl):
        imports = [l.strip() for l in open(tl) if l.strip()]
    if not imports:
        for entry in sorted(os.listdir(stage)):
            if entry.endswith((".dist-info", ".libs")) or not re.match(r"^[A-Za-z_]", entry):
                continue
            p = os.path.join(stage, entry)
            if os.path.isdir(p) and os.path.exists(os.path.join(p, "__init__.py")):
                imports.append(entry)
            elif entry.endswith(".py"):
                imports.append(entry[:-3])
            elif entry.endswith(".so"):
                imports.append(entry.split(".")[0])
    imports = [m for m in imports if m not in wheel.get("skip_imports", [])]
    imports = [m for m in imports if os.path.exists(os.path.join(stage, m)) or
               os.path.exists(os.path.join(stage, m + ".py")) or
               any(e.startswith(m + ".") and e.endswith(".so") for e in os.listdir(stage))]

    filename = "%s-%s-%s.whl" % (under(name), full_version, tag)
    dest_dir = os.path.join(out, wheel["index"], norm(name))
    os.makedirs(dest_dir, exist_ok=True)
    write_wheel(stage, dist_info, os.path.join(dest_dir, filename), sde)
    size = os.path.getsize(os.path.join(dest_dir, filename))
    manifest = {
        "name": name, "version": full_version, "file": os.path.join(wheel["index"], norm(name), filename),
        "index": wheel["index"], "flavour": flavour, "imports": imports, "platform": platform,
        "debs": wheel["debs"], "debian_metadata_version": debian_version, "bundled": sorted(bundled),
        "dropped_symlinks": sorted(dropped), "size": size, "alternate": bool(wheel.get("alternate")),
    }
    if unpatched:
        manifest["unpatched"] = sorted(unpatched)
    os.makedirs(os.path.join(out, "manifests"), exist_ok=True)
    alt = "-" + full_version if wheel.get("alternate") else ""
    with open(os.path.join(out, "manifests", under(name) + alt + "-" + flavour + manifest_suffix() + ".json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    log("%s: %s (%d MB, %d libraries bundled)" % (name, filename, size >> 20, len(bundled)))
    shutil.rmtree(stage)


def build_lib_wheel(wheel, base, out, sde, flavour, provided):
    """A wheel of shared libraries (kind "libs"), or a stand-in that holds
    none (kind "standin"), laid out as NVIDIA's wheels on PyPI."""
    name, full_version, lib_dir = wheel["name"], wheel["full_version"], wheel["lib_dir"]
    stage = "/tmp/stage/" + under(name)
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    namespace_files(stage, lib_dir)
    libs = {}
    if wheel.get("kind") == "standin":
        with open(os.path.join(stage, lib_dir, "STAND-IN.txt"), "w") as f:
            f.write(wheel["summary"] + "\n")
    else:
        check_deb_versions(wheel)
        libs = deb_libraries(wheel)
    missing_ok = ALLOWED_MISSING.get(flavour)
    origin, queue, bundled = {}, [], []
    for soname, real in sorted(libs.items()):
        rel = lib_dir + "/" + soname
        shutil.copyfile(real, os.path.join(stage, rel))
        os.chmod(os.path.join(stage, rel), 0o755)
        origin[rel] = real
        queue.append(rel)
    i = 0
    while i < len(queue):
        rel = queue[i]
        i += 1
        path = os.path.join(stage, rel)
        resolved = ldd(origin[rel])
        rpaths = set()
        for n in run("patchelf", "--print-needed", path).split():
            if n in libs:
                rpaths.add("$ORIGIN")
                continue
            how, where = place_needed(name, rel, n, resolved, provided, base, missing_ok)
            if how == "rpath":
                rpaths.add(where)
            if how != "bundle":
                continue
            target = lib_dir + "/" + n
            if target not in origin:
                shutil.copyfile(where, os.path.join(stage, target))
                os.chmod(os.path.join(stage, target), 0o755)
                origin[target] = where
                queue.append(target)
                bundled.append(n)
            rpaths.add("$ORIGIN")
        if rpaths:
            patchelf("--set-rpath", ":".join(sorted(rpaths)), path)
    dist_info = "%s-%s.dist-info" % (under(name), full_version)
    di = os.path.join(stage, dist_info)
    os.makedirs(di)
    with open(os.path.join(di, "METADATA"), "w", encoding="utf-8") as f:
        f.write(lib_metadata(wheel))
    tag = "py3-none-" + PLATFORM_TAG
    with open(os.path.join(di, "WHEEL"), "w") as f:
        f.write("Wheel-Version: 1.0\nGenerator: ktrdr-images integration/world repack.py\n"
                "Root-Is-Purelib: false\nTag: %s\n" % tag)
    filename = "%s-%s-%s.whl" % (under(name), full_version, tag)
    dest_dir = os.path.join(out, wheel["index"], norm(name))
    os.makedirs(dest_dir, exist_ok=True)
    write_wheel(stage, dist_info, os.path.join(dest_dir, filename), sde)
    size = os.path.getsize(os.path.join(dest_dir, filename))
    manifest = {
        "name": name, "version": full_version, "file": os.path.join(wheel["index"], norm(name), filename),
        "index": wheel["index"], "flavour": flavour, "kind": wheel.get("kind"), "imports": [],
        "platform": True, "debs": wheel.get("debs") or [], "lib_dir": lib_dir, "libs": sorted(libs),
        "bundled": sorted(bundled), "size": size,
        "debian_versions": {d: deb_version(d) for d in wheel.get("debs") or []},
    }
    os.makedirs(os.path.join(out, "manifests"), exist_ok=True)
    with open(os.path.join(out, "manifests", under(name) + "-" + flavour + manifest_suffix() + ".json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    log("%s: %s (%d MB, libraries: %s)" % (name, filename, size >> 20, " ".join(sorted(libs)) or "none, a stand-in"))
    shutil.rmtree(stage)


def write_wheel(stage, dist_info, dest, sde):
    import time
    date = time.gmtime(max(sde, 315532800))[:6]
    entries = []
    for root, dirs, names in os.walk(stage):
        dirs.sort()
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), stage)
            entries.append(rel)
    entries.sort(key=lambda r: (r.startswith(dist_info + "/"), r))
    record_name = dist_info + "/RECORD"
    records = []
    tmp = dest + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        for rel in entries:
            path = os.path.join(stage, rel)
            size = os.path.getsize(path)
            info = zipfile.ZipInfo(rel, date_time=date)
            mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            level = 6 if size < (64 << 20) else 1
            info.compress_level = level  # Python 3.13; _compresslevel before
            info._compresslevel = level
            h = hashlib.sha256()
            with open(path, "rb") as src, zf.open(info, "w", force_zip64=size > (1 << 31)) as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    dst.write(chunk)
            digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
            records.append("%s,sha256=%s,%d" % (rel, digest, size))
        records.append(record_name + ",,")
        info = zipfile.ZipInfo(record_name, date_time=date)
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, "\n".join(records) + "\n")
    os.rename(tmp, dest)


def cmd_build(args):
    spec = json.load(open(args.spec))
    versions = {norm(w["name"]): w["version"] for w in spec["wheels"]}
    provided = provided_libraries(spec, args.flavour)
    global ARCH
    ARCH = args.arch
    todo = [w for w in spec["wheels"] if w["flavour"] == args.flavour and w.get("arch", "") in ("", ARCH)]
    for n, w in enumerate(todo, 1):
        # One line per wheel on the step's output, which the world shows
        # as it goes ("repack: 12/51 ..."), so a slow repack looks busy.
        log("%d/%d %s %s (from %s)" % (n, len(todo), w["name"], w["full_version"], " ".join(w.get("debs") or []) or "nothing: a stand-in"))
        build_wheel(w, versions, args.base, args.out, spec["sde"], spec["python_tag"], args.flavour, provided)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--spec", required=True)
    b.add_argument("--flavour", required=True, choices=["cpu", "cuda"])
    b.add_argument("--base", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--arch", default="amd64", choices=["amd64", "arm64"])
    args = p.parse_args()
    cmd_build(args)


if __name__ == "__main__":
    main()
