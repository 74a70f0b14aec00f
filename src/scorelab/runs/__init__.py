"""Run folders: what ``scorelab train`` writes and ``sample``/``evaluate`` read back.

- :mod:`scorelab.runs.folder`: ``config.json``, loading a trained run, its data;
- :mod:`scorelab.runs.training`: planning and training a run from a data source and a preset;
- :mod:`scorelab.runs.sampling`: sampling a run (or any score source) into ``.npy`` files.
"""

from scorelab.runs.folder import (
    CONFIG_NAME,
    RUN_FORMAT,
    Run,
    RunFolderError,
    fresh_sampler,
    is_image_source,
    load_run,
    load_run_data,
    load_run_labelled_data,
    read_run_config,
    run_config_json,
    target_or_run,
)
from scorelab.runs.sampling import sample_to_file
from scorelab.runs.training import (
    describe_plan,
    exact_score_metric,
    make_loss,
    plan_conditional_run,
    plan_run,
    train_run,
)

__all__ = [
    "CONFIG_NAME",
    "RUN_FORMAT",
    "Run",
    "RunFolderError",
    "describe_plan",
    "exact_score_metric",
    "fresh_sampler",
    "is_image_source",
    "load_run",
    "load_run_data",
    "load_run_labelled_data",
    "make_loss",
    "plan_conditional_run",
    "plan_run",
    "read_run_config",
    "run_config_json",
    "sample_to_file",
    "target_or_run",
    "train_run",
]
