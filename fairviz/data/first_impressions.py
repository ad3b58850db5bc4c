"""ChaLearn First Impressions V2 (CVPR'17) → a fairviz manifest.

The data set is not redistributed; download it yourself (it needs the ChaLearn licence) and
point ``build_manifest`` at the folder you extracted it into. Expected files, found anywhere
under ``root`` (recursively):

- ``annotation_training.pkl``, ``annotation_validation.pkl``, ``annotation_test.pkl``: Python-2
  pickles of ``{trait: {"<id>.mp4": value}}`` with traits ``extraversion``, ``neuroticism``,
  ``agreeableness``, ``conscientiousness``, ``interview``, ``openness``. The label is the
  ``interview`` trait ("would you invite this person to a job interview?", in [0, 1]); the
  split is the file a video came from (training → train, validation → val, test → test).
- ``transcription_training.pkl`` etc. (optional): ``{"<id>.mp4": transcript}``.
- ``eth_gender_annotations_dev.csv`` and ``eth_gender_annotations_test.csv``: semicolon-separated
  ``VideoName;YouTubeID;Ethnicity;Gender`` with Gender 1 = male, 2 = female and Ethnicity
  1 = Asian, 2 = Caucasian, 3 = African-American.
- the ``.mp4`` clips, in any sub-folders (``train-1/training80_01/…``).

**Unpickling.** The annotation and transcription files are pickles of plain dicts, strings and
floats. They are read with `fairviz.safety.load_plain_pickle`, which refuses every global (class
or function), so a hostile file cannot run code; ``encoding="latin1"`` reads the Python-2
pickles. The folder is walked once (links are not followed) and messages name files relative to
it.

The manifest has columns ``video`` (relative to the CSV's folder when ``out_csv`` is given,
else absolute), ``label``, ``group``, ``transcript``, ``split``, ``id`` (``<id>.mp4``),
``gender``, ``ethnicity``. ``group`` is ``female``/``male`` (``group="gender"``; loaded with
the default rule, male = 1) or the ethnicity name (``group="ethnicity"``; pass
``privileged="caucasian"`` to ``load_manifest_features`` to compare it with the rest).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pandas as pd

from fairviz.atomic import write_text
from fairviz.safety import load_plain_pickle

log = logging.getLogger(__name__)

SPLITS = {"training": "train", "validation": "val", "test": "test"}
GENDER = {1: "male", 2: "female"}
ETHNICITY = {1: "asian", 2: "caucasian", 3: "african-american"}
LABEL_TRAIT = "interview"
GROUP_COLUMNS = ("gender", "ethnicity")


#: every file name this module looks for (the .mp4 clips aside)
_WANTED = tuple(f"{kind}_{part}.pkl" for kind in ("annotation", "transcription") for part in SPLITS) + (
    "eth_gender_annotations_dev.csv", "eth_gender_annotations_test.csv")


class _Tree:
    """The files of a data set folder, from one walk (symbolic links are not followed).

    ``files[name]``: the shallowest file of that name (ties: alphabetical); ``videos``: every
    ``.mp4`` by name (first in sorted path order wins). ``rel(path)``: a path relative to the root,
    for messages (they never show where the folder is on the server).
    """

    def __init__(self, root: Path):
        self.root = root
        hits: dict[str, list[Path]] = {}
        mp4: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for f in filenames:
                if f in _WANTED or f.endswith(".mp4"):
                    p = Path(dirpath) / f
                    if p.is_symlink() or not p.is_file():
                        continue
                    (mp4 if f.endswith(".mp4") else hits.setdefault(f, [])).append(p)
        self.files = {k: min(v, key=lambda p: (len(p.relative_to(root).parts), str(p))) for k, v in hits.items()}
        self.videos: dict[str, Path] = {}
        for path in sorted(mp4):
            if path.name in self.videos:
                log.warning("%s appears twice (%s, %s); using the first", path.name,
                            self.rel(self.videos[path.name]), self.rel(path))
                continue
            self.videos[path.name] = path

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))


def _tree(root) -> _Tree:
    return root if isinstance(root, _Tree) else _Tree(Path(root))


def load_pickle(path: str | os.PathLike, shown: str | None = None):
    """Read a First Impressions pickle (Python-2, ``encoding="latin1"``) that holds only plain
    values; any class or function in it is refused (ValueError) and nothing in it runs.
    ``shown``: the name used in messages (default: the file name)."""
    shown = shown or Path(path).name
    with open(path, "rb") as fh:
        try:
            return load_plain_pickle(fh, encoding="latin1")
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
                AttributeError, UnicodeDecodeError, RecursionError, MemoryError) as err:
            raise ValueError(f"{shown} is not a readable First Impressions pickle: {err}") from None


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("latin1")
    return "" if v is None else str(v)


def _video_key(name) -> str:
    name = _text(name).strip()
    return name if name.endswith(".mp4") else f"{name}.mp4"


def read_annotations(root) -> pd.DataFrame:
    """All annotated videos: columns ``id`` (``<id>.mp4``), ``split``, ``label`` (interview) and
    one column per other trait. Raises ValueError when no annotation file is found."""
    tree = _tree(root)
    rows: dict[str, dict] = {}
    clashes: set[tuple[str, str]] = set()
    found = []
    for part, split in SPLITS.items():
        path = tree.files.get(f"annotation_{part}.pkl")
        if path is None:
            continue
        found.append(path.name)
        data = load_pickle(path, tree.rel(path))
        if not isinstance(data, dict) or LABEL_TRAIT not in {_text(k) for k in data} or not all(
                isinstance(v, dict) for v in data.values()):
            raise ValueError(f"{tree.rel(path)} does not hold a trait → {{video: value}} dict with an "
                             f"{LABEL_TRAIT!r} trait")
        for trait, values in data.items():
            trait = _text(trait)
            for vid, value in values.items():
                key = _video_key(vid)
                row = rows.setdefault(key, {"id": key, "split": split})
                if row["split"] != split:
                    if (key, split) not in clashes:
                        clashes.add((key, split))
                        log.warning("%s is annotated in both %s and %s; keeping %s", key,
                                    row["split"], split, row["split"])
                    continue
                try:
                    row["label" if trait == LABEL_TRAIT else trait] = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{tree.rel(path)}: {trait} of {key} is {value!r}, not a number") from None
    if not found:
        raise ValueError("no annotation_{training,validation,test}.pkl in this folder; "
                         "is this the First Impressions V2 folder?")
    df = pd.DataFrame(list(rows.values()))
    missing = df["label"].isna() if "label" in df else pd.Series(True, index=df.index)
    if missing.any():
        log.warning("%d videos have no %r score and are left out", int(missing.sum()), LABEL_TRAIT)
        df = df[~missing]
    return df.reset_index(drop=True)


def read_transcripts(root) -> dict[str, str]:
    """``{"<id>.mp4": transcript}`` from every ``transcription_*.pkl`` found (may be empty)."""
    tree = _tree(root)
    out: dict[str, str] = {}
    for part in SPLITS:
        path = tree.files.get(f"transcription_{part}.pkl")
        if path is None:
            continue
        data = load_pickle(path, tree.rel(path))
        if not isinstance(data, dict):
            raise ValueError(f"{tree.rel(path)} does not hold a {{video: transcript}} dict")
        out.update({_video_key(k): _text(v) for k, v in data.items()})
    return out


def read_demographics(root) -> pd.DataFrame:
    """Columns ``id``, ``gender`` (male/female), ``ethnicity`` from the eth_gender CSVs."""
    tree = _tree(root)
    frames = []
    for name in ("eth_gender_annotations_dev.csv", "eth_gender_annotations_test.csv"):
        path = tree.files.get(name)
        if path is None:
            continue
        try:
            df = pd.read_csv(path, sep=";", dtype={"VideoName": str, "YouTubeID": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read {tree.rel(path)}: {err}") from None
        df.columns = [str(c).strip() for c in df.columns]
        need = {"VideoName", "Ethnicity", "Gender"}
        if not need <= set(df.columns):
            raise ValueError(f"{tree.rel(path)} needs the semicolon-separated columns "
                             f"VideoName;YouTubeID;Ethnicity;Gender; found {list(df.columns)}")
        frames.append(pd.DataFrame({
            "id": [_video_key(v) for v in df["VideoName"]],
            "gender": pd.to_numeric(df["Gender"], errors="coerce").map(GENDER),
            "ethnicity": pd.to_numeric(df["Ethnicity"], errors="coerce").map(ETHNICITY),
        }))
    if not frames:
        raise ValueError("no eth_gender_annotations_dev.csv / _test.csv in this folder; "
                         "they give the gender and ethnicity of each video")
    return pd.concat(frames, ignore_index=True).drop_duplicates("id", keep="first")


def find_videos(root) -> dict[str, Path]:
    """``{"<id>.mp4": path}`` for every .mp4 under ``root`` (first in sorted order wins; links
    are not followed)."""
    return dict(_tree(root).videos)


def build_manifest(root: str | os.PathLike, out_csv: str | os.PathLike | None = None, *,
                   group: str = "gender") -> pd.DataFrame:
    """The First Impressions V2 folder ``root`` as a fairviz manifest (see the module docstring).

    Args:
        root: the extracted data set folder.
        out_csv: where to write the manifest (atomically); the ``video`` paths are then relative
            to its folder. None: not written, absolute paths.
        group: "gender" (female/male) or "ethnicity" (asian/caucasian/african-american).

    Returns:
        the manifest rows, in split then id order. Annotated videos whose file is not found or
        that have no demographic annotation are left out, logged by name, and listed in
        ``df.attrs["skipped"]`` (``[{"video", "reason"}]``).

    Raises:
        ValueError: ``root`` is not a folder, lacks the annotation files, or no video is left.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is not a folder")
    if group not in GROUP_COLUMNS:
        raise ValueError(f"group must be one of {GROUP_COLUMNS}; got {group!r}")
    tree = _Tree(root)  # one walk serves every file looked up below
    ann = read_annotations(tree)
    transcripts = read_transcripts(tree)
    demo = read_demographics(tree)
    videos = tree.videos
    df = ann.merge(demo, on="id", how="left")
    keep, skipped = _usable_rows(df, videos, group)
    base = Path(out_csv).expanduser().resolve().parent if out_csv is not None else None
    manifest = _manifest_frame(df.loc[keep].copy(), videos, transcripts, group, base)
    manifest.attrs["skipped"] = skipped
    if out_csv is not None:
        write_text(out_csv, manifest.to_csv(index=False))
    return manifest


def _usable_rows(df: pd.DataFrame, videos: dict, group: str) -> tuple[list, list[dict]]:
    """Index labels of the annotated rows with a video file and a ``group`` annotation, and the
    others as ``[{"video", "reason"}]`` (logged by name); ValueError when none is usable."""
    skipped = []
    keep = []
    for i, row in df.iterrows():
        if row["id"] not in videos:
            skipped.append({"video": row["id"], "reason": "video file not found under root"})
        elif pd.isna(row[group]):
            skipped.append({"video": row["id"], "reason": f"no {group} annotation"})
        else:
            keep.append(i)
    for s in skipped:
        log.warning("First Impressions: leaving out %s (%s)", s["video"], s["reason"])
    if skipped:
        log.warning("First Impressions: %d of %d annotated videos left out", len(skipped), len(df))
    if not keep:
        raise ValueError("no usable video in this folder: " + "; ".join(
            f"{s['video']}: {s['reason']}" for s in skipped[:5]))
    return keep, skipped


def _manifest_frame(df: pd.DataFrame, videos: dict, transcripts: dict, group: str, base: Path | None) -> pd.DataFrame:
    """The manifest rows of ``df`` in split then id order; video paths relative to ``base`` (or
    absolute when None)."""

    def where(vid: str) -> str:
        path = videos[vid].resolve()
        if base is None:
            return str(path)
        return os.path.relpath(path, base)

    order = {"train": 0, "val": 1, "test": 2}
    df["_order"] = df["split"].map(order)
    df = df.sort_values(["_order", "id"]).drop(columns="_order").reset_index(drop=True)
    traits = [c for c in df.columns if c not in
              {"id", "split", "label", "gender", "ethnicity"}]
    return pd.DataFrame({
        "video": [where(v) for v in df["id"]],
        "label": df["label"].astype(float),
        "group": df[group].astype(str),
        "transcript": [transcripts.get(v, "") for v in df["id"]],
        "split": df["split"],
        "id": df["id"],
        "gender": df["gender"],
        "ethnicity": df["ethnicity"],
        **{t: df[t] for t in sorted(traits)},
    })
