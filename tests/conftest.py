"""Test-wide settings: one torch thread per test worker (``make test`` runs two workers on two
cores; small networks are several times slower when workers fight over threads)."""

import os

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
os.environ.setdefault("SCORELAB_CACHE", os.path.join(os.path.dirname(__file__), "..", ".cache"))
