"""Atomic writes: a reader sees the old file/folder or the new one, never a half-written one.

Everything is written to a temporary sibling first, flushed, then moved into place with
`os.replace` (atomic on POSIX within one filesystem). Temporaries are named with `TMP_PREFIX`
(``.fairviz-tmp-``), a prefix no other program uses; a temporary folder also holds the marker
file `MARKER` until it is renamed into place. A process killed mid-write leaves its temporary
behind; the next write into the same folder removes such leftovers once they are
`STALE_AFTER_S` old (no save takes that long, so a save in progress is never touched), and
only those: a folder without the marker, or any name without the prefix, is never removed.

Files and folders are created with the usual modes (0666 / 0777 less the umask), like any
other file a user saves.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterator

STALE_AFTER_S = 6 * 3600
#: Start of every temporary name fairviz writes (files end in ``.tmp``).
TMP_PREFIX = ".fairviz-tmp-"
#: File inside a temporary folder that marks it as fairviz's own, until it is committed.
MARKER = ".fairviz-staging"


def _is_ours(e: os.DirEntry) -> bool:
    """A leftover fairviz wrote: a prefixed ``.tmp`` file, or a prefixed folder holding the marker
    (links are never followed)."""
    if not e.name.startswith(TMP_PREFIX):
        return False
    if e.is_dir(follow_symlinks=False):
        marker = os.path.join(e.path, MARKER)
        return os.path.isfile(marker) and not os.path.islink(marker)
    return e.name.endswith(".tmp") and e.is_file(follow_symlinks=False)


def sweep_stale(folder: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Remove temporaries of killed writes in `folder` (see the module docstring) last modified
    more than `STALE_AFTER_S` seconds ago; returns what was removed."""
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        try:
            if _is_ours(e) and e.stat(follow_symlinks=False).st_mtime < cutoff:
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue  # another process removed or is using it
    return removed


def current_umask() -> int:
    """The process's umask (from /proc on Linux, which does not change it; else set and reset)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_mode(path: str | os.PathLike) -> None:
    """Give a file written by a library that forces 0600 (e.g. safetensors) the mode any saved
    file gets: 0666 less the umask."""
    os.chmod(path, 0o666 & ~current_umask())


def _temp_name(final: Path, suffix: str = "") -> Path:
    return final.with_name(f"{TMP_PREFIX}{final.name}.{secrets.token_hex(4)}{suffix}")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)
    while True:
        tmp = _temp_name(path, ".tmp")
        try:  # mode 0666 less the umask, as for any file the user saves
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
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
    while True:
        tmp = _temp_name(final)
        try:
            tmp.mkdir(0o777)  # less the umask
            break
        except FileExistsError:
            continue
    try:
        (tmp / MARKER).write_bytes(b"")
        yield tmp
        (tmp / MARKER).unlink()
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
        with contextlib.suppress(OSError):  # now holds the old content: ours to sweep if killed
            (tmp / MARKER).write_bytes(b"")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    # fallback (no renameat2): a process killed between these two renames leaves no `final`
    old = final.with_name(f"{TMP_PREFIX}old-{final.name}.{os.getpid()}")
    os.rename(final, old)
    with contextlib.suppress(OSError):
        (old / MARKER).write_bytes(b"")
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
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
