"""Execute scorelab's tutorial notebooks with a real Jupyter kernel and save HTML copies.

    python notebooks/run_notebooks.py                      # every notebook, full mode
    python notebooks/run_notebooks.py --html notebooks/html
    python notebooks/run_notebooks.py --fast 01_quickstart.ipynb

Each notebook runs through ``nbclient`` on an IPython kernel of this Python (ipykernel in the
same environment; nothing is registered), in a temporary working folder, so nothing is written
next to the notebooks. ``--fast`` sets ``SCORELAB_FAST=1`` in the kernel, the switch every
notebook reads in its first code cell. ``--html DIR`` writes each executed notebook, figures
embedded, as ``DIR/NAME.html`` (``nbconvert``'s ``HTMLExporter``). The test suite
(``tests/test_notebooks.py``) runs the notebooks through :func:`execute_notebook`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent
#: Seconds one cell may run before the kernel is interrupted and the notebook fails.
CELL_TIMEOUT = 600
#: Terminal colour codes in IPython tracebacks, removed from error messages.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NotebookExecutionError(RuntimeError):
    """A notebook cell raised; the message names the notebook, the cell and the error."""


def notebook_paths(folder: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """The tutorial notebooks in ``folder``, sorted by name."""
    return sorted(Path(folder).glob("*.ipynb"))


def kernel_env(*, fast: bool) -> dict[str, str]:
    """Environment of the kernel: this process's, with the fast switch, inline figures and one
    torch thread unless the caller chose otherwise."""
    env = dict(os.environ)
    env["SCORELAB_FAST"] = "1" if fast else "0"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def this_python_kernel():
    """A kernel manager whose kernel is this Python (``python -m ipykernel_launcher``), whatever
    kernels are registered on the machine: a user's registered ``python3`` kernel may belong to
    another environment without scorelab."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            from ipykernel.kernelspec import RESOURCES, get_kernel_dict

            return self.kernel_spec_class(resource_dir=RESOURCES, **get_kernel_dict())

    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())


def execute_notebook(
    path: str | os.PathLike,
    *,
    fast: bool,
    workdir: str | os.PathLike | None = None,
    timeout: int = CELL_TIMEOUT,
):
    """Run the notebook at ``path`` top to bottom; return ``(executed notebook, seconds)``.

    The kernel's working folder is ``workdir`` (a fresh temporary folder when None). A cell
    that raises ends the run with :class:`NotebookExecutionError` naming the notebook, the
    cell's index and first line, and the error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    failed: dict[str, int] = {}

    def on_cell_error(cell, cell_index, execute_reply) -> None:  # nbclient's hook
        failed["index"] = cell_index

    with tempfile.TemporaryDirectory(prefix="scorelab-nb-") as tmp:
        cwd = Path(workdir) if workdir is not None else Path(tmp)
        km = this_python_kernel()
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_error=on_cell_error,
        )
        start = time.perf_counter()
        try:
            client.execute(env=kernel_env(fast=fast))
        except (CellExecutionError, CellTimeoutError) as err:
            index = failed.get("index", _first_error_cell(nb))
            head = nb.cells[index].source.strip().splitlines()[:1] if index is not None else []
            where = f"cell {index} ({head[0][:70]!r})" if head else "a cell"
            text = _ANSI.sub("", str(err)).strip()
            last = text.splitlines()[-1] if text else repr(err)
            raise NotebookExecutionError(f"{path.name}: {where} failed: {last}\n\n{text}") from None
        finally:
            # nbclient shuts down only kernels it started itself; this one is ours.
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return nb, time.perf_counter() - start


def _first_error_cell(nb) -> int | None:
    """Index of the first cell holding an error output (or None)."""
    for i, cell in enumerate(nb.cells):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return i
    return None


def write_html(nb, path: str | os.PathLike) -> Path:
    """Write the executed notebook ``nb`` as a standalone HTML page (figures embedded)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files or names (default: all)")
    parser.add_argument("--fast", action="store_true", help="run with SCORELAB_FAST=1")
    parser.add_argument("--html", metavar="DIR", help="write executed HTML copies into DIR")
    args = parser.parse_args(argv)
    paths = [
        Path(p) if Path(p).exists() else NOTEBOOK_DIR / p for p in args.notebooks
    ] or notebook_paths()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    failures = 0
    for path in paths:
        try:
            nb, seconds = execute_notebook(path, fast=args.fast)
        except NotebookExecutionError as err:
            failures += 1
            print(f"FAILED {err}", file=sys.stderr)
            continue
        line = f"{path.name}: {seconds:.1f} s"
        if args.html:
            line += f" -> {write_html(nb, Path(args.html) / (path.stem + '.html'))}"
        print(line, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
