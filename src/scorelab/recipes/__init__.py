"""One recipe per seed experiment, run by ``scorelab run RECIPE``.

Each module ``seedNNN.py`` defines a list ``RECIPES`` of :class:`~scorelab.recipes.base.Recipe`;
:func:`all_recipes` collects them by name.
"""

from __future__ import annotations

import importlib

from scorelab.recipes.base import Recipe, RecipeContext, run_recipe

#: Modules holding recipes (imported lazily: some need matplotlib and training code).
RECIPE_MODULES = (
    "scorelab.recipes.seed000",
    "scorelab.recipes.seed001",
    "scorelab.recipes.seed002",
    "scorelab.recipes.seed003",
    "scorelab.recipes.seed004",
)


def all_recipes() -> dict[str, Recipe]:
    """Every recipe by name, in seed order."""
    recipes: dict[str, Recipe] = {}
    for module_name in RECIPE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # not written yet
                continue
            raise
        for recipe in module.RECIPES:
            recipes[recipe.name] = recipe
    return recipes


def get_recipe(name: str) -> Recipe:
    recipes = all_recipes()
    if name not in recipes:
        raise ValueError(
            f"unknown recipe {name!r}: valid names are {', '.join(recipes)} "
            "(see `scorelab run --list`)"
        )
    return recipes[name]


__all__ = ["Recipe", "RecipeContext", "all_recipes", "get_recipe", "run_recipe"]
