"""The HTTP API: ``uvicorn signals.api:app --port 8080``.

The API image has no torch: scoring here uses numpy only.
"""

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from signals import __version__

app = FastAPI(title="signals", version=__version__)


class Window(BaseModel):
    prices: list[float]


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "service": "signals-api"}


@app.post("/score")
def score(w: Window) -> dict[str, float]:
    p = np.asarray(w.prices, dtype=float)
    if p.size < 2:
        return {"momentum": 0.0}
    return {"momentum": float((p[-1] - p[0]) / max(abs(p[0]), 1e-9))}
