"""Data: toy point clouds, point files, image sets, and noise levels chosen from data."""

from scorelab.data.files import DataError, load_points
from scorelab.data.images import (
    from_model_range,
    load_digits_images,
    load_images,
    load_mnist,
    load_mnist_subset,
    read_idx,
    to_model_range,
)
from scorelab.data.noise_levels import (
    IMAGE_SIGMA_MIN,
    SIGMA_MIN_FRACTION,
    NoiseLevels,
    choose_sigmas,
    langevin_step_size,
)
from scorelab.data.stats import DataStats, data_stats, training_noise_range
from scorelab.data.toy import (
    TOY_DATASETS,
    TOY_LAWS,
    is_target_source,
    load_dataset,
    moons,
    split_indices,
    swiss_roll,
    train_test_split,
)

__all__ = [
    "IMAGE_SIGMA_MIN",
    "SIGMA_MIN_FRACTION",
    "TOY_DATASETS",
    "TOY_LAWS",
    "DataError",
    "DataStats",
    "NoiseLevels",
    "choose_sigmas",
    "data_stats",
    "from_model_range",
    "is_target_source",
    "langevin_step_size",
    "load_dataset",
    "load_digits_images",
    "load_images",
    "load_mnist",
    "load_mnist_subset",
    "load_points",
    "moons",
    "read_idx",
    "split_indices",
    "swiss_roll",
    "to_model_range",
    "training_noise_range",
    "train_test_split",
]
