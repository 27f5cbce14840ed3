"""Training worker: ``uvicorn ktrdr.training.training_worker:app --port 5002``."""

from typing import Any

from fastapi import FastAPI

app = FastAPI(title="KTRDR training worker")


@app.get("/health")
def health() -> dict[str, Any]:
    return {"healthy": True, "worker": "training"}


@app.get("/device")
def device() -> dict[str, Any]:
    """Report torch's build flavour and whether a GPU is usable.

    torch is imported lazily so that /health answers even where torch cannot
    be loaded (e.g. a CUDA build on a host without cuDNN).
    """
    import torch

    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
