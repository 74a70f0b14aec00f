"""An exclusive lock on a run folder, so two processes never write into the same run at once."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock becomes advisory-only (see RunLock.acquire)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLockedError(OSError):
    """Another process holds the run folder's lock (an ``OSError``: the folder is busy)."""


class RunLock:
    """Hold ``run_dir/.lock`` with ``fcntl.flock`` (non-blocking) while writing into ``run_dir``.

    A second holder, in this process or another, gets ``RunLockedError`` at once. The operating
    system releases the lock when the holder exits or dies, so a killed run never leaves a stale
    lock behind. Use as ``with RunLock(run_dir): ...``; the folder is created if needed.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise ``RunLockedError`` naming the holder's pid."""
        if self._fd is not None:
            raise RuntimeError(f"this RunLock on {self.run_dir} is already held")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            warnings.warn(
                "run-folder locking needs fcntl (not available on this system); two runs writing "
                f"into {self.run_dir} at once will not be detected",
                stacklevel=2,
            )
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"run folder {self.run_dir} is in use by another scorelab process (pid {holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the file stays; removing it would race with a waiting process)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
