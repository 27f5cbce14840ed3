"""Health endpoints of the API and the two workers."""

import subprocess
import sys

from fastapi.testclient import TestClient

from ktrdr.api.main import app as api_app
from ktrdr.backtesting.backtest_worker import app as backtest_app
from ktrdr.training.training_worker import app as training_app


def test_api_health() -> None:
    response = TestClient(api_app).get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "ktrdr-api"}


def test_backtest_worker_health() -> None:
    response = TestClient(backtest_app).get("/health")
    assert response.status_code == 200
    assert response.json() == {"healthy": True, "worker": "backtest"}


def test_training_worker_health() -> None:
    response = TestClient(training_app).get("/health")
    assert response.status_code == 200
    assert response.json() == {"healthy": True, "worker": "training"}


def test_api_does_not_load_torch() -> None:
    # A fresh interpreter, so that nothing imported by other tests can hide an import.
    code = "import sys, ktrdr.api.main; assert 'torch' not in sys.modules, 'API imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)
