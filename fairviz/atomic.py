"""Atomic writes: a reader sees the old file/folder or the new one, never a half-written one.

Everything is written to a temporary sibling first, flushed, then moved into place with
`os.replace` (atomic on POSIX within one filesystem). A process killed mid-write leaves its
hidden temporary behind; the next write into the same folder removes such leftovers once they
are `STALE_AFTER_S` old (no save takes that long, so a save in progress is never touched).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

STALE_AFTER_S = 6 * 3600


def sweep_stale(folder: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Remove temporaries of killed writes in `folder` (``.tmp-*`` folders, ``.*.tmp`` files)
    last modified more than `STALE_AFTER_S` seconds ago; returns what was removed."""
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        staging = e.name.startswith(".tmp-") and e.is_dir(follow_symlinks=False)
        partial = e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False)
        try:
            if (staging or partial) and e.stat(follow_symlinks=False).st_mtime < cutoff:
                if staging:
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue  # another process removed or is using it
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; returns the path."""
    return write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `final`; on success it is renamed to `final`.

    On any exception the temporary folder is removed and `final` is untouched. With
    `replace=False` an existing `final` is an error (FileExistsError) at commit time, so two
    writers of the same name cannot silently overwrite each other. With `replace=True` the old
    folder is swapped out and deleted only after the new one is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}.", dir=final.parent))
    try:
        yield tmp
        _commit_dir(tmp, final, replace=replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _commit_dir(tmp: Path, final: Path, *, replace: bool) -> None:
    if not final.exists():
        try:
            # rename() onto a missing name is atomic; if another writer won the race we fail.
            os.rename(tmp, final)
            return
        except OSError:
            if not final.exists():
                raise
    if not replace:
        raise FileExistsError(f"{final} already exists; choose another name")
    if _exchange(tmp, final):  # one atomic swap: `final` is never missing, even if killed here
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old content
        return
    # fallback (no renameat2): a process killed between these two renames leaves no `final`
    old = final.with_name(f".tmp-old-{final.name}.{os.getpid()}")
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import errno

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOENT):
        return False  # old kernel / filesystem without exchange, or `b` vanished: plain renames
    raise OSError(err, os.strerror(err), str(b))
