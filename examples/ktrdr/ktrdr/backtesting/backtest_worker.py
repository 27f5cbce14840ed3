"""Backtest worker: ``uvicorn ktrdr.backtesting.backtest_worker:app --port 5003``."""

from typing import Any

from fastapi import FastAPI

app = FastAPI(title="KTRDR backtest worker")


@app.get("/health")
def health() -> dict[str, Any]:
    return {"healthy": True, "worker": "backtest"}


@app.get("/info")
def info() -> dict[str, Any]:
    """Report the numeric stack; torch is imported here, never at module level."""
    import numpy
    import pandas

    result: dict[str, Any] = {"numpy": numpy.__version__, "pandas": pandas.__version__}
    try:
        import torch
    except ImportError:
        result["torch"] = None
    else:
        result["torch"] = torch.__version__
        result["cuda"] = torch.version.cuda
    return result
