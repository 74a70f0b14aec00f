"""The layers of scorelab run one way (docs/ARCHITECTURE.md), checked by import-linter.

The contract lives in pyproject.toml (``[tool.importlinter]``): utils < targets, sde < samplers,
losses, models < data, metrics < training, plotting < runs < evaluation < recipes, notebook < cli.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_layers_run_one_way():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The check can fail: a contract that forbids a real import is reported broken."""
    config = tmp_path / "contract.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "scorelab"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "samplers below utils (false)"\ntype = "layers"\n'
        'layers = ["scorelab.utils", "scorelab.samplers"]\n'
    )
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and "BROKEN" in done.stdout
