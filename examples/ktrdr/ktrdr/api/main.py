"""API entry point: ``uvicorn ktrdr.api.main:app --port 8000``.

The backend image has no ML stack, so nothing here may import torch or
scikit-learn, not even lazily.
"""

from fastapi import FastAPI

from ktrdr import __version__

app = FastAPI(title="KTRDR API", version=__version__)


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok", "service": "ktrdr-api"}
