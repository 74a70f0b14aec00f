"""The ``scorelab`` command line: the one place where names become objects.

Every sub-command lives in its own module with two functions: ``add_parser(subparsers)`` and
``run(args) -> int``. Errors a user can fix (bad input, missing files, a locked run folder, a
diverging sampler) end in a one-line message and exit code 2, never in a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from scorelab import __version__

#: Sub-command name -> module under ``scorelab.cli`` (imported lazily: torch is slow to import).
COMMANDS = {
    "sample": "scorelab.cli.sample",
    "train": "scorelab.cli.train",
    "evaluate": "scorelab.cli.evaluate",
    "demo": "scorelab.cli.demo",
    "run": "scorelab.cli.run",
    "classifier": "scorelab.cli.classifier",
    "inpaint": "scorelab.cli.inpaint",
}

EXIT_USAGE = 2


class ScorelabArgumentParser(argparse.ArgumentParser):
    """argparse parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _available_commands() -> dict[str, object]:
    modules = {}
    for name, module_name in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name != module_name:
                raise
    return modules


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = ScorelabArgumentParser(
        prog="scorelab",
        description="Score-based generative modelling: learn scores by denoising score matching "
        "and sample with Langevin dynamics, reverse SDEs and the probability-flow ODE.",
    )
    parser.add_argument("--version", action="version", version=f"scorelab {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=ScorelabArgumentParser
    )
    modules = _available_commands()
    for module in modules.values():
        module.add_parser(sub)  # type: ignore[attr-defined]
    return parser, modules


def print_once(text: str) -> None:
    """Print ``text`` on stderr from one process: rank 0 under torchrun (which sets ``RANK``),
    the only process otherwise; the other ranks would repeat the same line."""
    if os.environ.get("RANK", "0") == "0":
        print(text, file=sys.stderr)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the input is wrong": reported in one line, exit code 2."""
    errors: list[type[BaseException]] = [ValueError, TypeError, FileNotFoundError, PermissionError]
    errors.append(IsADirectoryError)
    errors.append(NotADirectoryError)
    errors.append(FloatingPointError)  # samplers' DivergenceError, training divergence
    errors.append(OSError)
    errors.append(OverflowError)  # noise levels whose square does not fit a float
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    module = modules[args.command]
    try:
        return int(module.run(args) or 0)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        print("scorelab: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        if isinstance(exc, RuntimeError) and not _is_out_of_memory(text):
            raise
        first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        print(
            f"scorelab {args.command}: error: out of memory ({first}); lower --hidden, "
            "--batch-size or -n",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except user_errors() as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"scorelab {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Destroy the process group a command joined under torchrun, before the interpreter exits.

    A gloo group left alive at exit can abort the process in its C++ teardown ("terminate called
    without an active exception": 1 run in 25 of ``sample`` under torchrun on a loaded machine).
    """
    if "torch.distributed" in sys.modules:  # never import torch just to find nothing to do
        from scorelab.training.distributed import cleanup

        cleanup()


def _is_out_of_memory(text: str) -> bool:
    return "can't allocate memory" in text or "out of memory" in text.lower()


if __name__ == "__main__":
    raise SystemExit(main())
