"""scorelab: score-based generative modelling, correct to the formula and tested against exact scores."""

__version__ = "0.1.0"
