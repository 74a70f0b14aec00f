"""The table of the seeds' figures and numbers (``scorelab.recipes.coverage``) against the recipes.

The fast-mode runs in ``test_recipes_a.py`` / ``test_recipes_b.py`` check that each recipe writes
the files and keys the table lists for it; this file checks the table itself, without running
anything: every seed has rows, every row names a registered recipe of that seed, and no recipe
imports the notebook layer (recipes and notebook are siblings over the core).
"""

from __future__ import annotations

import ast
from pathlib import Path

from scorelab.recipes import RECIPE_MODULES, all_recipes
from scorelab.recipes.coverage import SEED_FIGURES, SEED_NUMBERS

SEEDS = ("000", "001", "002", "003", "004")


def test_every_seed_has_figures_and_numbers() -> None:
    for seed in SEEDS:
        assert any(row.seed == seed for row in SEED_FIGURES), seed
        assert any(row.seed == seed for row in SEED_NUMBERS), seed


def test_rows_name_registered_recipes_of_their_seed() -> None:
    recipes = all_recipes()
    for row in (*SEED_FIGURES, *SEED_NUMBERS):
        assert row.recipe in recipes, row
        assert recipes[row.recipe].seed_doc == row.seed, row
    for row in SEED_FIGURES:
        assert Path(row.output).suffix in (".png", ".gif"), row
    assert len({(r.recipe, r.output) for r in SEED_FIGURES}) == len(SEED_FIGURES)


def test_every_seed_experiment_has_a_recipe() -> None:
    names = set(all_recipes())
    assert {"seed000-moons", "seed000-ncsn-mnist", "seed003-mixture-1d"} <= names
    assert {n[4:7] for n in names} == set(SEEDS)


def test_recipes_do_not_import_the_notebook_layer() -> None:
    for module in RECIPE_MODULES:
        path = Path(__import__(module, fromlist=["_"]).__file__)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("scorelab.notebook"), path.name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("scorelab.notebook") for a in node.names)
