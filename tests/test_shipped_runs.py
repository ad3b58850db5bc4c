"""The runs shipped in models/ (made by `make models`): all present, all load, and their stored
metrics are exactly what `fairviz.metrics.audit` gives on their stored predictions."""

from __future__ import annotations

import numpy as np
import pytest

from fairviz.cli.ship import FAIROFFSET_LAMBDA_SWS, SWEEP_LAMBDA_WS
from fairviz.paths import REPO_ROOT
from fairviz.runs import list_runs, load_run
from fairviz.train import METHOD_NAMES, compute_metrics, spdd_floor

MODELS = REPO_ROOT / "models"
# what `make models` makes, but the adaptive sweep runs (their weights depend on the curve)
EXPECTED = ([f"a4-{m}" for m in METHOD_NAMES] + [f"sweep-a4-lw{lw:g}" for lw in SWEEP_LAMBDA_WS]
            + [f"fsweep-a4-lsw{v:g}" for v in FAIROFFSET_LAMBDA_SWS])


def test_every_shipped_run_is_present_and_valid():
    runs = list_runs(MODELS)
    assert runs.skipped == [], f"broken run folders in models/: {runs.skipped}"
    names = {r.name for r in runs}
    assert set(EXPECTED) <= names, f"missing shipped runs: {sorted(set(EXPECTED) - names)}; run `make models`"
    for r in runs:
        if r.name in EXPECTED:
            assert (r.alpha, r.bias_mode) == (4.0, "label"), r.name


def test_shipped_runs_are_small():
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total < 30 * 2**20, f"models/ holds {total / 2**20:.1f} MB"


def _close(stored, again) -> bool:
    """Equal up to float rounding (a BLAS or numpy version may change the last bits of a sum):
    floats to 1e-9 relative, everything else exactly, dicts and lists element by element."""
    if isinstance(again, dict):
        return isinstance(stored, dict) and stored.keys() == again.keys() and all(
            _close(stored[k], again[k]) for k in again)
    if isinstance(again, (list, tuple)):
        return isinstance(stored, (list, tuple)) and len(stored) == len(again) and all(
            _close(a, b) for a, b in zip(stored, again))
    if isinstance(again, float) and not isinstance(stored, bool) and isinstance(stored, (int, float)):
        return stored == pytest.approx(again, rel=1e-9, abs=1e-12)
    return stored == again


def test_close_compares_with_tolerance():
    assert _close({"a": [1.0, {"b": 2}]}, {"a": [1.0 + 1e-13, {"b": 2}]})
    assert not _close({"a": 1.0}, {"a": 1.001}) and not _close({"a": 1}, {"a": 1, "b": 2})
    assert not _close("x", "y") and _close(None, None)


@pytest.mark.parametrize("name", EXPECTED)
def test_shipped_run_loads_and_metrics_match_predictions(name):
    run = load_run(MODELS / name)
    assert run.name == name
    test = run.test_predictions()
    m = run.metrics
    again = compute_metrics(
        test["score"].to_numpy(), test["group"].to_numpy(), test["label"].to_numpy(),
        m["n_boot"], random_state=m["random_state"],
    )
    for key, value in again.items():
        assert _close(m[key], value), f"{name}: stored {key} differs from the recomputed one"
    floor = spdd_floor(test["score"].to_numpy(), test["group"].to_numpy(),
                       n_perm=m["spdd_floor"]["n_perm"], seed=run.config.seed)
    assert _close(m["spdd_floor"], floor)
    assert m["score_std"] == pytest.approx(float(np.std(test["score"])), abs=1e-12)
    assert run.z.shape == (len(test), run.model_config.d_z)


@pytest.mark.parametrize("name", EXPECTED)
def test_shipped_run_can_be_repaired_from_its_validation_rows(name):
    """Every shipped run stores validation rows, so `<method> + repair` is available for it; a stored
    repair.json (written by save_run since post-processing became a method family) is exactly the
    map fitted on those rows."""
    from fairviz import postprocess
    from fairviz.runs import read_predictions

    preds = read_predictions(MODELS / name)
    fitted = postprocess.fit_validation_repair(preds, run=name)
    assert fitted.n_fit_ == int((preds["split"] == "val").sum()) > 0
    if (MODELS / name / postprocess.REPAIR_FILE).exists():
        assert postprocess.load_repair(MODELS / name, preds).to_dict() == fitted.to_dict()


def test_refresh_metrics_recomputes_stored_test_metrics_and_keeps_the_rest(tmp_path):
    """`ship-models --refresh-metrics` rewrites each run's test metrics from its predictions (same
    resamples and seed) and keeps the keys training wrote (validation numbers, best epoch, floor)."""
    import json
    import shutil

    from fairviz.cli import main

    out = tmp_path / "models"
    shutil.copytree(MODELS / "a4-mmd", out / "a4-mmd")
    path = out / "a4-mmd" / "metrics.json"
    original = json.loads(path.read_text(encoding="utf-8"))
    damaged = {**original, "pcc": {"value": -1.0}, "spdd": {"value": 9.0}}
    path.write_text(json.dumps(damaged), encoding="utf-8")
    assert main(["ship-models", "--out", str(out), "--refresh-metrics"]) == 0
    again = json.loads(path.read_text(encoding="utf-8"))
    assert _close(again, original)
    assert (out / "README.md").is_file()
    assert main(["ship-models", "--out", str(tmp_path / "empty"), "--refresh-metrics"]) == 2
