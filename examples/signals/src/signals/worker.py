"""The scoring worker: ``python -m signals.worker`` scores batches with the
model under $SIGNALS_MODELS; ``--check`` loads the model, scores one batch
and prints what it ran on, exiting non-zero if anything is missing.
``--check-install`` checks the same without importing torch (the model
file parses, torch's distribution is installed, which build): for a host
where the CUDA build cannot load (no cuDNN, no driver).
"""

import json
import os
import sys
import time
from pathlib import Path


def load(models: Path):
    import torch

    spec = json.loads((models / "linear.json").read_text())
    layer = torch.nn.Linear(len(spec["weights"]), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([spec["weights"]], dtype=torch.float32))
        layer.bias.fill_(spec["bias"])
    return layer


def check() -> int:
    import torch

    models = Path(os.environ.get("SIGNALS_MODELS", "models"))
    layer = load(models)
    x = torch.ones(4, layer.in_features)
    y = layer(x)
    print(
        f"signals worker ok: torch {torch.__version__}, cuda {torch.version.cuda}, "
        f"model {models / 'linear.json'}, score {float(y[0]):.3f}"
    )
    return 0


def check_install() -> int:
    from importlib.metadata import version

    models = Path(os.environ.get("SIGNALS_MODELS", "models"))
    spec = json.loads((models / "linear.json").read_text())
    weights = spec["weights"]
    torch_version = version("torch")
    build = "cpu" if "+cpu" in torch_version else "cuda"
    print(
        f"signals worker installed: torch {torch_version} ({build} build, not imported), "
        f"model {models / 'linear.json'} with {len(weights)} weights"
    )
    return 0


def main(argv: list[str]) -> int:
    if "--check" in argv:
        return check()
    if "--check-install" in argv:
        return check_install()
    models = Path(os.environ.get("SIGNALS_MODELS", "models"))
    load(models)
    print("signals worker: waiting for batches", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
