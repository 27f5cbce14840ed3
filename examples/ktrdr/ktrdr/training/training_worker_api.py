"""Training worker: ``uvicorn ktrdr.training.training_worker_api:app --port 5002``.

The training worker is the one that needs torch, but it imports it lazily
(KTRDR's milestone 2): ``/health`` answers without loading torch, so the
worker starts even where torch cannot be loaded (a CUDA build on a host
without cuDNN or a GPU driver), and ``/device`` reports which torch flavour
the image carries.
"""

import importlib.util
import os
import re
from typing import Any

from fastapi import FastAPI

app = FastAPI(title="KTRDR training worker")


@app.get("/health")
def health() -> dict[str, Any]:
    return {"healthy": True, "worker": "training"}


def torch_build() -> dict[str, Any]:
    """Read torch's build flavour from ``torch/version.py`` without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {"installed": False, "flavour": None}
    version_py = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    with open(version_py, encoding="utf-8") as f:
        text = f.read()
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    cuda = re.search(r"^cuda(?::[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return {
        "installed": True,
        "torch": version.group(1) if version else None,
        "cuda": cuda.group(1) if cuda else None,
        "flavour": "cuda" if cuda else "cpu",
    }


@app.get("/device")
def device() -> dict[str, Any]:
    """Report torch's flavour and whether a GPU is usable.

    The flavour comes from torch's files; ``cuda_available`` needs torch
    imported, which fails for the CUDA build where cuDNN or the driver is
    missing: the error is reported instead.
    """
    result = torch_build()
    if not result["installed"]:
        return result
    try:
        import torch
    except (ImportError, OSError) as e:
        result["cuda_available"] = False
        result["import_error"] = str(e)
    else:
        result["cuda_available"] = torch.cuda.is_available()
    return result
