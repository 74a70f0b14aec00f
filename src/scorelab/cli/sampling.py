"""Sampler flags of the command line, generated from the sampler registry.

Every option of every registered sampler (``scorelab.samplers.SAMPLERS``) becomes one flag with
the registry's type, choices and help; the flag's default is "not given", so the library's
default (the registry's, or the recommended configuration's) applies. ``scorelab sample``,
``evaluate`` and ``demo`` share these flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from scorelab.samplers import SAMPLERS, SamplerConfig, get_sampler
from scorelab.samplers.registry import DENOISE


def _all_options() -> dict[str, Any]:
    """Every option by keyword name, first registration wins (names mean one thing)."""
    options: dict[str, Any] = {}
    for spec in SAMPLERS.values():
        for opt in spec.all_options():
            options.setdefault(opt.name, opt)
    options.pop(DENOISE.name, None)  # offered as --no-denoise
    return options


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--sampler``, ``--steps`` and one flag per registered option."""
    g = parser.add_argument_group(
        "sampler options (`scorelab sample --list` says which sampler takes which)"
    )
    g.add_argument(
        "--sampler",
        default=None,
        choices=list(SAMPLERS),
        metavar="NAME",
        help="sampler (default: the recommended one for the target or run)",
    )
    g.add_argument("--steps", type=int, default=None, help="steps (their meaning and cost: --list)")
    for opt in _all_options().values():
        default = "from the data" if opt.default is None else opt.default
        if opt.type is bool:  # --name / --no-name; "not given" stays None
            kind: dict[str, Any] = {"action": argparse.BooleanOptionalAction}
        else:
            kind = {"type": opt.type, "choices": opt.choices}
        g.add_argument(
            opt.flag, dest=opt.name, default=None, help=f"{opt.help} (default: {default})", **kind
        )
    g.add_argument("--no-denoise", action="store_true", help=DENOISE.help.replace("end", "skip"))
    g.add_argument("--progress", action="store_true", help="show a progress bar")


def sampler_choice(
    args: argparse.Namespace, recommended: SamplerConfig
) -> tuple[str | SamplerConfig, dict[str, Any]]:
    """``(sampler, options)`` for ``draw_samples``: the ``--sampler`` named (else the source's
    ``recommended`` configuration) and the options given on the command line.

    An option the chosen sampler does not take is an error naming its flag.
    """
    sampler = args.sampler if args.sampler is not None else recommended
    spec = get_sampler(args.sampler or recommended.sampler)
    known = {opt.name for opt in spec.all_options()}
    given = {
        name: getattr(args, name)
        for name in _all_options()
        if getattr(args, name, None) is not None
    }
    if args.no_denoise:
        given[DENOISE.name] = False
    stray = [_flag(k) for k in given if k not in known]
    if stray:
        raise ValueError(
            f"sampler {spec.name} does not take {', '.join(stray)}; "
            "`scorelab sample --list` shows each sampler's options"
        )
    return sampler, given


def _flag(name: str) -> str:
    return "--no-denoise" if name == DENOISE.name else _all_options()[name].flag
