"""Score networks ``forward(x, sigma) -> ∇ₓ log p_σ(x)`` and the wrappers that make them so."""

from scorelab.models.embeddings import (
    GaussianFourierFeatures,
    LabelEmbedding,
    LevelEmbedding,
    log_sigma_features,
    nearest_level,
)
from scorelab.models.mlp import FourierTimeMLP, ScoreMLP, SigmaInputMLP, SoftplusMLP
from scorelab.models.registry import MODEL_NAMES, build_model, model_spec
from scorelab.models.resnet import ConditionedResnetBlock, ConditionedSimpleResnet
from scorelab.models.unet import SmallUNet
from scorelab.models.wrappers import IndexConditioned, TimeConditioned, as_score_fn

__all__ = [
    "MODEL_NAMES",
    "ConditionedResnetBlock",
    "ConditionedSimpleResnet",
    "FourierTimeMLP",
    "GaussianFourierFeatures",
    "IndexConditioned",
    "LabelEmbedding",
    "LevelEmbedding",
    "ScoreMLP",
    "SigmaInputMLP",
    "SmallUNet",
    "SoftplusMLP",
    "TimeConditioned",
    "as_score_fn",
    "build_model",
    "log_sigma_features",
    "model_spec",
    "nearest_level",
]
