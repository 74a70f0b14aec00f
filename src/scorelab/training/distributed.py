"""Data-parallel training and sampling on ``torch.distributed`` (DDP; Li et al. 2020, "PyTorch
Distributed"), launched by ``torchrun`` on one machine or several.

- ``init_distributed`` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``) and joins the process group: NCCL when the run is on CUDA,
  gloo on CPU. Not launched distributed, it returns a single-process ``DistInfo`` and does nothing.
- ``train_distributed`` runs the unchanged ``scorelab.training.train`` loop on every rank with a
  ``DistributedDataParallel`` network and a ``ShardedLoss``. Every rank draws the same global
  batch and the same noise (same seeds); each evaluates the network on its own slice of the rows
  only, so ``W`` ranks × ``B/W`` rows take the same optimiser steps as one process × ``B`` rows,
  up to float rounding. Only rank 0 writes checkpoints and logs; every rank resumes from them.
- ``sample_distributed`` splits a large sampling job into seeded chunks across ranks and rank 0
  writes one ``.npy`` file, identical for any number of processes.
- ``launch`` starts ``torchrun --standalone`` for ``scorelab ... --nproc N`` on one machine.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from scorelab.training.checkpoint import latest_checkpoint
from scorelab.training.config import TrainConfig, resolve_device
from scorelab.training.loop import LossFn, TrainResult, derive_seed, train
from scorelab.utils import atomic_writer, check_int

__all__ = [
    "DistInfo",
    "ShardedLoss",
    "cleanup",
    "init_distributed",
    "launch",
    "launch_command",
    "round_robin",
    "sample_distributed",
    "shard_bounds",
    "train_distributed",
]

#: torchrun's variables that mark a process as one rank of a distributed job.
_ENV_VARS = ("RANK", "WORLD_SIZE")
#: Random stream of sampling chunks (the training loop uses 0, 1, 2 for batches, noise, test).
_SAMPLE_STREAM = 3
#: DDP option that stops the buffer broadcast at every forward (buffers are still synced once at
#: construction): the networks keep no running statistics, and evaluation then needs no collective.
#: torch 2.13 renamed ``broadcast_buffers`` to ``forward_sync_buffers``.
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)
#: Sampling draws ``chunk_size`` samples per call by default.
DEFAULT_CHUNK = 10_000


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a distributed job: its global ``rank`` among ``world_size``
    processes, its ``local_rank`` on its machine, its ``device`` and the ``backend`` (``"gloo"``,
    ``"nccl"``, or ``None`` when not distributed)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one process that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when this process belongs to an initialised process group."""
        return self.backend is not None


def launched_distributed() -> bool:
    """True when ``torchrun`` (or another launcher) set ``RANK`` and ``WORLD_SIZE`` for us."""
    return all(v in os.environ for v in _ENV_VARS)


def init_distributed(
    device: str | torch.device = "auto",
    *,
    backend: str | None = None,
    init_method: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    timeout_s: float = 1800.0,
) -> DistInfo:
    """Join the process group described by torchrun's environment, or by the explicit
    ``init_method``/``rank``/``world_size`` (e.g. ``"file:///tmp/rendezvous"``), and return this
    process's ``DistInfo``.

    The backend is NCCL when ``device`` resolves to CUDA and gloo otherwise; on CUDA each process
    takes GPU ``LOCAL_RANK`` (``device="auto"`` or ``"cuda"``). Without a launcher and without
    explicit arguments this is a no-op returning ``DistInfo(0, 1, 0, device, None)``. Calling it
    again, or after the caller initialised ``torch.distributed`` itself, returns the current info.
    """
    if dist.is_available() and dist.is_initialized():
        return _current_info(device)
    explicit = init_method is not None or rank is not None or world_size is not None
    if not explicit and not launched_distributed():
        return DistInfo(0, 1, 0, resolve_device(device), None)
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; install a standard build")
    if explicit and (rank is None or world_size is None):
        raise ValueError("give rank and world_size together with init_method (or none of them)")
    rank = _env_int("RANK") if rank is None else check_int(rank, "rank", minimum=0)
    world_size = (
        _env_int("WORLD_SIZE") if world_size is None else check_int(world_size, "world_size")
    )
    if rank >= world_size:
        raise ValueError(f"rank must be < world_size ({world_size}); got {rank}")
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    dev = _rank_device(device, local_rank)
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if not explicit:
        _warn_shared_store()
    dist.init_process_group(
        backend,
        init_method=init_method or "env://",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    return DistInfo(rank, world_size, local_rank, dev, backend)


def cleanup() -> None:
    """Leave the process group (``destroy_process_group``) if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _warn_shared_store() -> None:
    """Warn when torchrun may restart workers while they share its rendezvous store.

    With the store shared (torch's default since 2.5), restarted workers can read the addresses
    of the previous attempt and fail or hang in ``init_process_group`` (pytorch/pytorch#135712;
    3 of 8 restarts failed or hung here). ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` in the
    environment of torchrun gives every attempt a fresh store.
    """
    shared = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    if shared and os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") not in ("", "0"):
        warnings.warn(
            "torchrun --max-restarts with a shared rendezvous store: a restart may fail to "
            "connect (pytorch/pytorch#135712); set TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in "
            "torchrun's environment (see docs/distributed.md)",
            stacklevel=3,
        )


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"environment variable {name} must be an integer set by torchrun; got {value!r}. "
            "Launch with torchrun (see docs/distributed.md) or unset RANK/WORLD_SIZE"
        ) from None


def _rank_device(device: str | torch.device, local_rank: int) -> torch.device:
    """The device of one rank: ``auto``/``cuda`` mean GPU ``local_rank`` when CUDA is usable."""
    dev = resolve_device(device)
    if dev.type != "cuda":
        return dev
    if str(device) in ("auto", "cuda"):
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} "
                "visible); use --nproc_per_node <= the number of GPUs, or --device cpu"
            )
        dev = torch.device("cuda", local_rank)
    torch.cuda.set_device(dev)
    return dev


def _current_info(device: str | torch.device) -> DistInfo:
    rank, world_size = dist.get_rank(), dist.get_world_size()
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    backend = str(dist.get_backend())
    if backend == "nccl":
        dev = torch.device("cuda", torch.cuda.current_device())
    elif str(device) == "auto":  # gloo moves CPU tensors
        dev = torch.device("cpu")
    else:
        dev = resolve_device(device)
    return DistInfo(rank, world_size, local_rank, dev, backend)


# --- training ------------------------------------------------------------------------------------


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank`` when ``n`` rows are split as evenly as possible (the
    first ``n % world_size`` ranks get one row more, as ``torch.tensor_split`` does)."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class _RowShard(nn.Module):
    """Runs ``net`` on the rows of one rank only; the other rows of the output are zeros.

    A loss may call the network on the batch itself (``N = B`` rows) or on ``k`` copies stacked
    with ``x0.repeat(k, ...)`` (``N = k·B``, as multi-level DSM's ``mode="sum"``): row ``i``
    belongs to example ``i mod B``. Tensor arguments with ``N`` rows (``sigma``, ``t``) are
    sliced alike; other arguments pass through.
    """

    def __init__(self, net: nn.Module, batch: int, lo: int, hi: int) -> None:
        super().__init__()
        self.net, self.batch, self.lo, self.hi = net, batch, lo, hi
        self.calls = 0

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        self.calls += 1
        n = x.shape[0]
        if n % self.batch:
            raise ValueError(
                f"under DDP the loss must call the network on its batch of {self.batch} rows or "
                f"on copies of it stacked with x0.repeat(k, ...); it called it on {n} rows"
            )
        rows = torch.arange(self.lo, self.hi, device=x.device)
        rows = (rows + self.batch * torch.arange(n // self.batch, device=x.device)[:, None]).ravel()

        def pick(a: Any) -> Any:
            is_rows = isinstance(a, Tensor) and a.ndim > 0 and a.shape[0] == n
            return a.index_select(0, rows) if is_rows else a

        out = self.net(pick(x), *map(pick, args), **{k: pick(v) for k, v in kwargs.items()})
        if not isinstance(out, Tensor) or out.shape[0] != len(rows):
            raise ValueError("the network must return one output row per input row")
        return out.new_zeros((n, *out.shape[1:])).index_copy(0, rows, out)


class ShardedLoss:
    """Per-example loss of one rank of a data-parallel step, exact w.r.t. one process.

    ``ShardedLoss(loss_fn, rank, world_size)(model, x0, generator)`` is called by every rank with
    the same global batch ``x0`` ``(B, *D)`` and a generator in the same state, so
    ``loss_fn`` draws the same noise for all ``B`` rows on every rank; the network runs only on
    this rank's rows ``shard_bounds(B, rank, world_size)`` (zeros elsewhere). The returned ``(B,)``
    tensor holds the true losses of all rows (gathered with one ``all_reduce``), and its gradient
    is ``world_size`` × the gradient of this rank's rows, so that DDP's averaging over ranks gives
    ``∇ mean(loss)`` of the whole batch. Without gradients (evaluation) it is ``loss_fn`` itself.

    Needs a per-example loss (row ``b`` depends on ``x0[b]`` only; no BatchNorm in training mode).
    """

    def __init__(self, loss_fn: LossFn, rank: int, world_size: int) -> None:
        if not callable(loss_fn):
            raise TypeError("loss_fn must be callable as loss_fn(model, x0, generator) -> (B,)")
        self.loss_fn = loss_fn
        self.rank = check_int(rank, "rank", minimum=0)
        self.world_size = check_int(world_size, "world_size")

    def __call__(
        self, model: nn.Module, x0: Tensor, generator: torch.Generator, **kwargs: Any
    ) -> Tensor:
        # ``kwargs``: the batch's labels ``y=`` of class-conditional training, passed through.
        if not torch.is_grad_enabled():  # evaluation: every rank computes the full, exact value
            net = model.module if isinstance(model, DistributedDataParallel) else model
            return self.loss_fn(net, x0, generator, **kwargs)
        B, W = x0.shape[0], self.world_size
        if B < W:
            raise ValueError(
                f"batch_size ({B}) must be >= the number of processes ({W}); raise --batch-size"
            )
        lo, hi = shard_bounds(B, self.rank, W)
        shard = _RowShard(model, B, lo, hi)
        losses = self.loss_fn(shard, x0, generator, **kwargs)
        if not isinstance(losses, Tensor) or losses.shape != (B,):
            return losses  # train_step names the wrong shape
        if shard.calls == 0:  # the gradients would then be neither sharded nor synchronised
            raise ValueError(
                "loss_fn(model, x0, generator) must call the network through its model argument "
                "(not a network captured from outside) to train on several processes"
            )
        mine = losses[lo:hi]
        values = torch.zeros_like(losses.detach())
        values[lo:hi] = mine.detach()
        dist.all_reduce(values)  # x + 0 is exact: every rank now holds every row's loss
        # Value: the gathered losses; gradient: W × this rank's rows (DDP then divides by W).
        scaled = values[lo:hi] + W * (mine - mine.detach())
        return torch.cat([values[:lo], scaled, values[hi:]])


def train_distributed(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Tensor,
    config: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    find_unused_parameters: bool = False,
    **train_kwargs: Any,
) -> TrainResult:
    """Data-parallel ``scorelab.training.train`` (DDP, Li et al. 2020) over every rank of the job.

    Call it on every rank with the same arguments; not launched distributed, it is ``train``.
    The global batch is ``config.batch_size`` (each of ``W`` ranks runs the network on about
    ``batch_size / W`` rows, see ``ShardedLoss``); the losses, weights, EMA and checkpoints equal
    those of one process up to float rounding. Only rank 0 locks ``run_dir`` and writes
    checkpoints and ``metrics.csv``; every rank resumes from the same checkpoint, so ``run_dir``
    must be on a file system all machines see. ``train_kwargs`` go to ``train`` (``test_data``,
    ``evaluate`` (run on every rank), ``resume``, ``progress`` (rank 0 only), ``callback``, ...).
    Returns the ``TrainResult`` of this rank, with the plain (unwrapped) network.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    if not (dist.is_available() and dist.is_initialized()) and not launched_distributed():
        return train(model, loss_fn, train_data, config, run_dir=run_dir, **train_kwargs)
    info = init_distributed(config.device)
    if info.world_size == 1:
        return train(model, loss_fn, train_data, config, run_dir=run_dir, **train_kwargs)
    if config.batch_size < info.world_size:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be >= the number of processes "
            f"({info.world_size}); it is the global batch, split across processes"
        )
    config = dataclasses.replace(config, device=str(info.device))  # "device" may change on resume
    _check_same_checkpoint(run_dir, train_kwargs.get("resume", True), info)
    model.to(info.device)
    ddp = DistributedDataParallel(
        model,  # the constructor broadcasts rank 0's weights and buffers to every rank
        device_ids=[info.device.index] if info.device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
        **_NO_FORWARD_BUFFER_SYNC,
    )
    sharded = ShardedLoss(loss_fn, info.rank, info.world_size)
    # On a fresh run rank 0 may write its step-0 checkpoint before another rank looks for one;
    # that rank then resumes from it, which is the same state (same seeds, broadcast weights).
    result = train(ddp, sharded, train_data, config, run_dir=run_dir, **train_kwargs)
    return dataclasses.replace(result, model=ddp.module)


def _check_same_checkpoint(run_dir: str | Path | None, resume: bool, info: DistInfo) -> None:
    """Refuse to start when the ranks would resume from different checkpoints (or some from
    none): the run folder must be shared by every machine."""
    if run_dir is None or not resume:
        return
    found = latest_checkpoint(run_dir)
    mine = None if found is None else (found.name, found.stat().st_size)
    seen: list[Any] = [None] * info.world_size
    dist.all_gather_object(seen, mine)
    if any(s != seen[0] for s in seen):
        raise ValueError(
            f"the processes see different checkpoints in {run_dir} ({seen[0]} on rank 0, {mine} "
            f"on rank {info.rank}); put the run folder (--out) on a file system shared by "
            "every machine"
        )


# --- sampling ------------------------------------------------------------------------------------

DrawFn = Callable[[int, torch.Generator], Tensor]


def round_robin(
    n_items: int,
    work: Callable[[int], Any],
    write: Callable[[dict[int, Any]], None],
    *,
    device: str | torch.device = "auto",
) -> dict[int, Any]:
    """Spread items ``0 … n_items − 1`` over the ranks and write their results from rank 0.

    Rank ``r`` of ``W`` runs ``work(i)`` for ``i ≡ r (mod W)``; rank 0 gathers every result and
    calls ``write({i: result})`` with all of them, then every rank waits for it (a single process
    does it all). Each item must draw its randomness from its own seed (e.g. ``derive_seed(seed,
    stream, i)``) so that the written file does not depend on ``W``. Returns this rank's results.
    """
    info = init_distributed(device)
    mine = {i: work(i) for i in range(info.rank, n_items, info.world_size)}
    results = mine
    if info.world_size > 1:
        parts: list[Any] | None = [None] * info.world_size if info.is_main else None
        dist.gather_object(mine, parts, dst=0)
        results = {i: v for part in parts or [mine] for i, v in part.items()}
    if info.is_main:
        write(results)
    if info.world_size > 1:
        dist.barrier()
    return mine


def sample_distributed(
    draw: DrawFn,
    n: int,
    path: str | os.PathLike,
    *,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    device: str | torch.device = "auto",
) -> Path:
    """Draw ``n`` samples with ``draw(m, generator) -> (m, *D)`` in chunks spread over the ranks,
    and write them to one ``.npy`` file ``(n, *D)`` from rank 0 (atomically).

    Chunk ``k`` holds samples ``[k·chunk_size, (k+1)·chunk_size)`` and is drawn by rank
    ``k mod W`` with a generator on the rank's device (``device``, or GPU ``LOCAL_RANK`` under
    NCCL) seeded from ``(seed, k)``, so the file is
    the same for any number of processes (single-process included). Rank 0 receives the chunks
    round by round and streams them into the file, holding at most ``W`` chunks in memory.
    Returns ``path`` on every rank once the file is in place.
    """
    n = check_int(n, "n")
    chunk_size = check_int(chunk_size, "chunk_size")
    seed = check_int(seed, "seed", minimum=0)
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"path must end in .npy; got {str(path)!r}")
    if not callable(draw):
        raise TypeError("draw must be callable as draw(m, generator) -> tensor (m, *D)")
    info = init_distributed(device)
    rank, world = info.rank, info.world_size
    sizes = [min(chunk_size, n - k) for k in range(0, n, chunk_size)]

    def write(tmp: Path) -> None:
        out, meta = None, None
        for first in range(0, len(sizes), world):  # one round: chunks first .. first + world - 1
            k = first + rank
            part = _draw_chunk(draw, k, sizes[k], seed, info.device) if k < len(sizes) else None
            if meta is None:  # the shape of every sample comes from chunk 0, drawn by rank 0
                meta = [(tuple(part.shape[1:]), part.dtype) if rank == 0 else None]
                if world > 1:
                    dist.broadcast_object_list(meta, src=0)
                if rank == 0:
                    out = np.lib.format.open_memmap(
                        tmp, "w+", _np_dtype(meta[0][1]), (n, *meta[0][0])
                    )
            pieces = _gather_chunk(part, *meta[0], chunk_size, info) if world > 1 else [part.cpu()]
            for r, piece in enumerate(pieces):  # empty on ranks other than 0
                if first + r < len(sizes):
                    lo = (first + r) * chunk_size
                    out[lo : lo + sizes[first + r]] = piece[: sizes[first + r]].numpy()
        if out is not None:
            out.flush()
            del out

    if rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_writer(path, write)
    else:
        write(path)  # collectives only; nothing is written on other ranks
    if world > 1:
        dist.barrier()
    return path


def _draw_chunk(draw: DrawFn, k: int, size: int, seed: int, device: torch.device) -> Tensor:
    generator = torch.Generator(device).manual_seed(derive_seed(seed, _SAMPLE_STREAM, k))
    part = draw(size, generator)
    if not isinstance(part, Tensor) or part.ndim < 1 or part.shape[0] != size:
        shape = tuple(part.shape) if isinstance(part, Tensor) else type(part).__name__
        raise ValueError(f"draw(m, generator) must return a tensor of m = {size} rows; got {shape}")
    return part.detach()


def _gather_chunk(
    part: Tensor | None,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    chunk_size: int,
    info: DistInfo,
) -> list[Tensor]:
    """Gather one chunk per rank on rank 0 (padded to ``chunk_size`` rows); CPU tensors out."""
    comm = info.device if info.backend == "nccl" else torch.device("cpu")
    padded = torch.zeros((chunk_size, *shape), dtype=dtype, device=comm)
    if part is not None:
        if tuple(part.shape[1:]) != shape or part.dtype != dtype:
            raise ValueError(
                f"draw returned samples of shape {tuple(part.shape[1:])}, {part.dtype} on rank "
                f"{info.rank} but {shape}, {dtype} on rank 0; draw must be the same on every rank"
            )
        padded[: len(part)] = part.to(comm)
    pieces = [torch.empty_like(padded) for _ in range(info.world_size)] if info.is_main else None
    dist.gather(padded, pieces, dst=0)
    return [p.cpu() for p in pieces] if pieces is not None else []


def _np_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype of samples of ``dtype``; half precisions are refused (numpy lacks bf16)."""
    if dtype in (torch.float16, torch.bfloat16):
        raise ValueError("draw returned half-precision samples; return float32 or float64")
    return torch.empty((), dtype=dtype).numpy().dtype


# --- launching -----------------------------------------------------------------------------------


def launch_command(
    nproc: int, argv: Sequence[str], *, max_restarts: int = 0, module: str = "scorelab"
) -> list[str]:
    """The command ``python -m torch.distributed.run --standalone --nproc_per_node=N
    --max-restarts=R -m scorelab ARGV...`` that runs ``argv`` on ``nproc`` processes here."""
    nproc = check_int(nproc, "nproc")
    max_restarts = check_int(max_restarts, "max_restarts", minimum=0)
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", f"--max-restarts={max_restarts}",
        "-m", module, *map(str, argv),
    ]  # fmt: skip


def launch(
    nproc: int,
    argv: Sequence[str],
    *,
    max_restarts: int = 0,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``scorelab ARGV`` on ``nproc`` processes of this machine through torchrun (the
    ``--nproc N`` option) and return its exit code. ``argv`` must not hold ``--nproc`` again;
    ``env`` (default: this process's) gets ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``."""
    if launched_distributed():
        raise ValueError(
            "--nproc cannot be used inside a torchrun job (RANK/WORLD_SIZE are set); "
            "drop --nproc and let torchrun start the processes"
        )
    if any(a == "--nproc" or str(a).startswith("--nproc=") for a in argv):
        raise ValueError("argv for launch must not contain --nproc (it would launch again)")
    command = launch_command(nproc, argv, max_restarts=max_restarts)
    # A fresh rendezvous store per attempt, so that restarts are reliable (see _warn_shared_store).
    env = {**(os.environ if env is None else env), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    return subprocess.run(command, env=env, check=False).returncode
