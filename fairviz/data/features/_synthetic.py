"""The synthetic interview data set's features: cache-key material and the cached loader."""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path

from fairviz.data import synthetic
from fairviz.data.features._audio import DEFAULT_MFCC_STEPS, DEFAULT_N_MFCC, SAMPLE_RATE
from fairviz.data.features._cache import FeatureWriter, _jsonable, cached_features
from fairviz.data.features._extract import extract_features
from fairviz.data.features._featureset import FeatureSet, Progress
from fairviz.data.features._text import DEFAULT_MAX_LENGTH, text_model_info


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
            "code_sha256": _generator_code_sha256(),
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
    progress: Progress | None = None,
    refresh: bool = False,
    mmap: bool = False,
    **options,
) -> FeatureSet:
    """The synthetic interview data set's features, generated and preprocessed once, then cached.

    Args:
        n_samples: candidates; None = ``fairviz.data.synthetic.DEFAULT_N_SAMPLES``.
        progress: ``progress(done, total, stage)``, stages "cache", "generate", "text", "audio".
        refresh: rebuild even when a sound cache exists.
        mmap: return ``video``, ``mfcc`` and ``text`` memory-mapped from the cache files.
        **options: the arguments of ``synthetic_cache_material``, with its defaults: ``seed``
            (generator seed, 0; same seed, same arguments → identical arrays), ``text_model``
            (local text model folder; None = ``default_text_model()``), ``n_mfcc`` and
            ``mfcc_steps`` (MFCC shape, see ``compute_mfcc``), and more ``make_synthetic``
            arguments (frames, size, audio_seconds, strengths).

    The cache lives in ``cache_dir()/features/synthetic-<key>/`` (see the module docstring for
    the key). ``meta`` holds the generator ``params`` and ``cache_path``/``cache_hit``.
    """
    material = synthetic_cache_material(n_samples, **options)
    shape = material["features"]

    def build(writer: FeatureWriter) -> FeatureSet:
        args = dict(material["generator"]["args"])
        if progress is not None:
            progress(0, 1, "generate")
        interviews = synthetic.make_synthetic(**args)
        if progress is not None:
            progress(1, 1, "generate")
        return extract_features(interviews, text_model=material["text_model"]["path"],
                                n_mfcc=shape["n_mfcc"], mfcc_steps=shape["mfcc_steps"], progress=progress)

    return cached_features("synthetic", material, build, refresh=refresh, progress=progress,
                           mmap=mmap)


def _generator_code_sha256() -> str:
    """SHA-256 over the generator's source: every ``.py`` file of the ``synthetic`` package, name
    and bytes, in name order, so an edit anywhere in the generator invalidates cached features."""
    digest = hashlib.sha256()
    for path in sorted(Path(synthetic.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
