"""Health endpoints of the API and the two workers."""

import subprocess
import sys

from fastapi.testclient import TestClient

from ktrdr.api.main import app as api_app
from ktrdr.backtesting.backtest_worker import app as backtest_app
from ktrdr.training.training_worker_api import app as training_app


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


def test_training_worker_reports_torch_flavour() -> None:
    # Reads torch/version.py: works for the CUDA build too, where importing
    # torch fails without cuDNN or a driver.
    response = TestClient(training_app).get("/device")
    assert response.status_code == 200
    body = response.json()
    if body["installed"]:
        assert body["flavour"] in ("cpu", "cuda")
        assert body["torch"].startswith("2.")


def test_workers_do_not_load_torch_at_import() -> None:
    code = (
        "import sys, ktrdr.backtesting.backtest_worker, ktrdr.training.training_worker_api; "
        "assert 'torch' not in sys.modules, 'a worker imported torch at module level'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
