"""Training steps per second on 1 and 2 processes (DDP) for the 2-D score MLP and the image U-Net.

Every configuration runs the real ``scorelab.training.distributed.train_distributed`` loop
(sharded multi-level DSM loss, Adam, EMA, gradient clipping) with the same global batch, and
times the steps after a warm-up from the loop's per-step callback on rank 0. On CPU every rank
uses ``--threads`` threads (default 1, as torchrun's OMP_NUM_THREADS=1), and one more row runs a
single process on all cores for reference; on CUDA each rank takes one GPU (NCCL).

    python benchmarks/bench_distributed.py --quick            # CPU, a few dozen steps (~1 min)
    python benchmarks/bench_distributed.py                    # CPU, more steps
    python benchmarks/bench_distributed.py --device cuda --nprocs 1 2 4 --suffix gpu  # GPUs
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

from scorelab.losses import multilevel_dsm_loss  # noqa: E402
from scorelab.models import ScoreMLP, SmallUNet  # noqa: E402
from scorelab.sde.sigmas import geometric_sigmas  # noqa: E402
from scorelab.training import TrainConfig  # noqa: E402
from scorelab.training.distributed import cleanup, init_distributed, train_distributed  # noqa: E402

#: model name -> (global batch, warm-up steps, timed steps) for quick and full runs.
SETTINGS = {
    "mlp-2d": {"quick": (256, 5, 40), "full": (256, 20, 300)},
    "unet-28x28": {"quick": (32, 2, 6), "full": (64, 5, 40)},
}


def _build(name: str) -> tuple[torch.nn.Module, torch.Tensor, list[float]]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "mlp-2d":
        return ScoreMLP(2), torch.randn(10_000, 2, generator=g), [10.0, 0.01]
    return SmallUNet(1), torch.rand(2_000, 1, 28, 28, generator=g), [50.0, 0.01]


def _rank(rank: int, nproc: int, threads: int, name: str, mode: str, device: str, tmp: str) -> None:
    """One process: train ``warm + timed`` steps and (rank 0) write the step timestamps."""
    if device == "cpu":
        torch.set_num_threads(threads)
    if nproc > 1:
        rendezvous = f"file://{tmp}/rendezvous"
        init_distributed(device, init_method=rendezvous, rank=rank, world_size=nproc)
    batch, warm, timed = SETTINGS[name][mode]
    model, data, (s_max, s_min) = _build(name)
    sigmas = geometric_sigmas(10, sigma_min=s_min, sigma_max=s_max)

    def loss_fn(net, x0, generator):
        return multilevel_dsm_loss(net, x0, sigmas, generator=generator)

    config = TrainConfig(
        steps=warm + timed, batch_size=batch, lr=1e-3, log_every=10**6, eval_every=10**6,
        checkpoint_every=10**6, device=device if nproc == 1 else "auto",
    )  # fmt: skip
    stamps: list[float] = []

    def tick(_: dict) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    train_distributed(model, loss_fn, data, config, progress=False, callback=tick)
    if rank == 0:
        steps_per_s = timed / (stamps[-1] - stamps[warm - 1])
        Path(tmp, "result.json").write_text(json.dumps({"steps_per_s": steps_per_s}))
    cleanup()


def measure(name: str, nproc: int, threads: int, mode: str, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        # CPU: fork, after importing what DDP imports lazily (torch._dynamo), so that start-up
        # is not timed twice; CUDA cannot fork after initialisation: spawn.
        method = "fork" if device == "cpu" else "spawn"
        mp.start_processes(_rank, args=(nproc, threads, name, mode, device, tmp), nprocs=nproc,
                           start_method=method)  # fmt: skip
        result = json.loads(Path(tmp, "result.json").read_text())
    batch, warm, timed = SETTINGS[name][mode]
    row = {"model": name, "nproc": nproc, "device": device, "global_batch": batch,
           "rows_per_rank": -(-batch // nproc),
           "threads_per_rank": threads if device == "cpu" else None,
           "timed_steps": timed, **result}  # fmt: skip
    print(f"{name:11s} nproc={nproc} threads={threads} {device}: "
          f"{result['steps_per_s']:.2f} steps/s", flush=True)  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few dozen steps per setting")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank (CPU)")
    parser.add_argument("--models", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--suffix", default="", help="results name: distributed[-SUFFIX].json")
    args = parser.parse_args()
    if args.device == "cuda" and max(args.nprocs) > torch.cuda.device_count():
        parser.error(f"--nprocs up to {torch.cuda.device_count()} (one GPU per process)")
    runs = [(n, args.threads) for n in args.nprocs]
    if args.device == "cpu":
        importlib.import_module("torch._dynamo")  # see measure
        cores = os.cpu_count() or 1
        if cores > args.threads:  # reference: one process using every core
            runs.append((1, cores))
    mode = "quick" if args.quick else "full"
    load_before = os.getloadavg()[0]
    rows = [measure(m, n, t, mode, args.device) for m in args.models for n, t in runs]
    for row in rows:
        one = next(r for r in rows if r["model"] == row["model"] and r["nproc"] == 1)
        row["speedup_vs_1"] = row["steps_per_s"] / one["steps_per_s"]
    name = "distributed" + (f"-{args.suffix}" if args.suffix else "")
    name += "_quick" if args.quick else ""
    save_results(name, {
        "mode": mode,
        "loss": "multi-level DSM, 10 geometric sigmas, Adam, EMA 0.999, grad clip 1",
        "load_average_1min": [load_before, os.getloadavg()[0]],  # before, after: shared machine
        "rows": rows,
        "gpu_run": "not run here (no GPU lent); on a machine with N GPUs: python "
                   "benchmarks/bench_distributed.py --device cuda --nprocs 1 2 ... N --suffix gpu",
    })  # fmt: skip


if __name__ == "__main__":
    main()
