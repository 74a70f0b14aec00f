"""scorelab: score-based generative modelling, tested against exact scores."""

__version__ = "0.1.0"
