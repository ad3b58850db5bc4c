"""The Representation page's data: a run's latent code Z read without torch, and what the page
says about it (no Streamlit here, so each is tested directly).

`fairviz.runs.load_run` rebuilds the network and so imports torch; a page that only draws Z
needs the test rows' Z, groups and scores, the run's ``info`` and its training history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from fairviz.runs import HISTORY_FILE, Z_FILE, check_run_folder, read_predictions, read_run_config
from fairviz.runs._folder import read_json  # the runs' own JSON reader (size and depth limits)


@dataclass(frozen=True)
class Latent:
    """Z of a run's test rows, (n_test, d_z) float32, with their groups and scores (n_test,), the
    run's ``info`` dict (e.g. ``features_meta``) and its per-epoch history (list of dicts)."""

    z: np.ndarray
    groups: np.ndarray
    scores: np.ndarray
    info: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


def _read_history(path: Path) -> list:
    history = read_json(path, "history file")
    if not isinstance(history, list):
        raise ValueError(f"run {path.parent.name!r}: history.json must be a list")
    return history


def read_latent(path) -> Latent:
    """Z, test groups and scores, info and history of the run folder ``path``, checked (Z must
    hold one tensor ``z`` of shape (test rows, the model's d_z)); ValueError saying what is wrong."""
    path = check_run_folder(path)
    cfg = read_run_config(path)
    preds = read_predictions(path)
    test = preds[preds["split"] == "test"].reset_index(drop=True)
    try:
        tensors = load_file(str(path / Z_FILE))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"Z file {Z_FILE} is not a valid safetensors file: {err}") from None
    if set(tensors) != {"z"}:
        raise ValueError(f"Z file of run {path.name!r} must hold one tensor 'z'; holds {sorted(tensors)}")
    z = tensors["z"]
    d_z = (cfg.get("model") or {}).get("d_z") if isinstance(cfg.get("model"), dict) else None
    if z.ndim != 2 or z.shape[0] != len(test) or (d_z is not None and z.shape[1] != d_z):
        raise ValueError(f"run {path.name!r}: Z has shape {z.shape}, expected ({len(test)}, {d_z}) "
                         "(test rows x d_z)")
    info = cfg.get("info")
    return Latent(z=z, groups=test["group"].to_numpy(), scores=test["score"].to_numpy(),
                  info=dict(info) if isinstance(info, dict) else {},
                  history=_read_history(path / HISTORY_FILE))


def adversary_range(history: list) -> tuple[float, float] | None:
    """Lowest and highest per-epoch training accuracy of a run's adversary (None: no adversary)."""
    accs = [h["adv_acc"] for h in history if isinstance(h, dict) and isinstance(h.get("adv_acc"), (int, float))]
    return (min(accs), max(accs)) if accs else None


def separation_note(dists: Mapping[str, float], methods: Mapping[str, str],
                    adversary: Callable[[str], tuple[float, float] | None]) -> str | None:
    """The sentence the page adds when a run of ``ours`` separates the groups' codes more than the
    closest ``vanilla`` run (the paper reports the opposite); None otherwise.

    ``dists``: run → centroid distance; ``methods``: run → method; ``adversary(run)``: that run's
    `adversary_range`."""
    vanilla = [d for n, d in dists.items() if methods[n] == "vanilla"]
    ours = [n for n in dists if methods[n] == "ours" and vanilla and dists[n] > min(vanilla)]
    if not ours:
        return None
    swings = [a for a in (adversary(n) for n in ours) if a]
    adv = [n for n in dists if methods[n] == "adversarial"]
    return (
        f"Here `ours` separates the groups more than `vanilla` ({dists[ours[0]]:.3f} vs {min(vanilla):.3f}), "
        "unlike the paper, which reports the smallest distance for its method. The W1 term acts on the "
        "scores, not on Z, so it matches the groups' score distributions while Z may still set the "
        "groups apart; the adversary behind gradient reversal is meant to hide the group in Z, but "
        "it is fooled by moving the group's direction around rather than by removing it"
        + (f" (its training accuracy swings between {swings[0][0]:.2f} and {swings[0][1]:.2f} from epoch "
           "to epoch instead of settling at chance)" if swings else "")
        + (f"; the adversarial baseline, the same adversary without W1, also gives {dists[adv[0]]:.3f}"
           if adv else "")
        + ". On the shipped data, W1 alone (adversary weight 0) brings the groups' codes closer than "
        "vanilla's: docs/RESULTS.md measures this."
    )
