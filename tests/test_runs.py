"""Saved runs: atomic save, faithful load, clear refusals, never unpickle, safe names, listing."""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fairviz import app_support
from fairviz import runs as R
from fairviz.atomic import TMP_PREFIX
from fairviz.model import FairMultimodalNet, ModelConfig
from fairviz.paths import REPO_ROOT
from fairviz.train import Run, TrainConfig

TINY = dict(
    video_channels=[4], video_hidden=4, audio_proj=4, audio_hidden=3, text_hidden=2,
    regressor_hidden=4, adversary_hidden=4,
)


def make_run(seed=0, n_val=7, n_test=9, name="unit-run") -> Run:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mcfg = ModelConfig.from_dict({**TINY, "n_mfcc": 5, "text_dim": 6})
    net = FairMultimodalNet(mcfg)
    n = n_val + n_test
    preds = pd.DataFrame(
        {
            "score": rng.uniform(0, 1, n),
            "label": rng.uniform(0, 1, n),
            "group": np.arange(n) % 2,
            "split": ["val"] * n_val + ["test"] * n_test,
        }
    )
    return Run(
        name=name,
        config=TrainConfig(method="ours", alpha=3.0, lambda_w=0.3, seed=seed, model=TINY),
        history=[{"epoch": 1, "loss": 0.1, "val_pcc": 0.5, "val_spdd": 0.1}],
        predictions=preds,
        z=rng.normal(size=(n_test, mcfg.d_z)).astype(np.float32),
        metrics={"n": n_test, "spdd": {"value": 0.1, "ci_low": 0.05, "ci_high": 0.2}, "pcc": None},
        state_dict={k: v.clone() for k, v in net.state_dict().items()},
        model_config=mcfg,
        info={"n_train": 10},
    )


@pytest.fixture
def saved(tmp_path):
    run = make_run()
    path = R.save_run(run, tmp_path / "unit-run")
    return run, path


def test_save_writes_the_documented_files(saved):
    run, path = saved
    assert sorted(p.name for p in path.iterdir()) == sorted(R.REQUIRED_FILES + R.OPTIONAL_FILES)
    cfg = json.loads((path / "config.json").read_text())
    for key in ("format_version", "fairviz_version", "method", "alpha", "lambda_w", "seed", "bias_mode"):
        assert key in cfg
    assert (cfg["method"], cfg["alpha"], cfg["lambda_w"], cfg["seed"], cfg["bias_mode"]) == (
        "ours", 3.0, 0.3, 0, "label",
    )
    assert cfg["model"]["video_hidden"] == 4 and cfg["train"]["method"] == "ours"
    assert pd.read_csv(path / "predictions.csv").columns.tolist() == ["score", "label", "group", "split"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_save_load_roundtrip_is_identical(saved):
    run, path = saved
    back = R.load_run(path)
    pd.testing.assert_frame_equal(back.predictions, run.predictions)  # exact float64 round trip
    np.testing.assert_array_equal(back.z, run.z)
    assert back.metrics == run.metrics and back.history == run.history
    assert back.config == run.config and back.model_config == run.model_config
    assert back.name == run.name and back.info == run.info
    assert back.state_dict.keys() == run.state_dict.keys()
    for k in run.state_dict:
        assert torch.equal(back.state_dict[k], run.state_dict[k]), k
    # the restored network predicts exactly what the saved one did
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 2, 3, 16, 16, generator=g), torch.randn(3, 4, 5, generator=g), torch.randn(3, 6, generator=g))
    with torch.no_grad():
        a = run.model()(*x)
        b = back.model()(*x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_existing_folder_needs_overwrite(saved, tmp_path):
    run, path = saved
    with pytest.raises(FileExistsError, match="already exists"):
        R.save_run(run, path)
    run2 = make_run(seed=1)
    R.save_run(run2, path, overwrite=True)
    np.testing.assert_array_equal(R.load_run(path).z, run2.z)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_failed_save_leaves_nothing(tmp_path):
    run = make_run()
    run.z = run.z[:3]  # wrong number of rows: refused before anything is written
    with pytest.raises(ValueError, match="n_test"):
        R.save_run(run, tmp_path / "bad")
    assert list(tmp_path.iterdir()) == []


def test_next_save_sweeps_stale_leftovers_of_killed_saves(tmp_path):
    import time

    from fairviz.atomic import MARKER, STALE_AFTER_S

    old = time.time() - STALE_AFTER_S - 60
    stale_dir, stale_file = tmp_path / f"{TMP_PREFIX}killed.abc123", tmp_path / f"{TMP_PREFIX}metrics.json.x1y2.tmp"
    fresh_dir = tmp_path / f"{TMP_PREFIX}in-progress.def456"  # a save going on right now: kept
    user_dir, user_file = tmp_path / ".tmpl", tmp_path / "notes.tmp"  # not ours: kept however old
    for d in (stale_dir, fresh_dir, user_dir):
        d.mkdir()
        (d / "x").write_bytes(b"partial")
        (d / MARKER).write_bytes(b"")
    for f in (stale_file, user_file):
        f.write_bytes(b"partial")
    for p in (stale_dir, stale_file, user_dir, user_file):
        os.utime(p, (old, old))
    R.save_run(make_run(), tmp_path / "next")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([fresh_dir.name, user_dir.name, user_file.name, "next"])


def test_save_refuses_unsafe_folder_name(tmp_path):
    with pytest.raises(ValueError, match="not allowed"):
        R.save_run(make_run(), tmp_path / "bad name!")


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "z.safetensors", "predictions.csv"])
def test_load_refuses_missing_file(saved, missing):
    _, path = saved
    (path / missing).unlink()
    with pytest.raises(ValueError, match=f"incomplete: missing {missing}"):
        R.load_run(path)


def test_load_refuses_other_format_version(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["format_version"] = 99
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format_version 99"):
        R.load_run(path)


def test_load_refuses_config_that_does_not_match_weights(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["model"]["video_hidden"] = 7
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match its model config.*shape mismatch"):
        R.load_run(path)


def test_load_refuses_unknown_config_keys_and_disagreeing_top_level(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "method": "vanilla"}))
    with pytest.raises(ValueError, match="disagrees"):
        R.load_run(path)
    cfg["model"]["n_layers"] = 2
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown model config keys"):
        R.load_run(path)


@pytest.mark.parametrize("fname", ["extra.pkl", "weights.pt", "innocent.json"])
def test_load_refuses_pickle_bearing_files(saved, fname):
    _, path = saved

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    (path / fname).write_bytes(pickle.dumps(Boom(), protocol=4))
    with pytest.raises(ValueError, match="pickle-bearing"):
        R.load_run(path)


def test_load_refuses_pickle_in_place_of_weights(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ValueError, match="pickle-bearing"):
        R.load_run(path)


def test_load_refuses_tampered_safetensors_header(saved):
    _, path = saved
    raw = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + raw[8:])
    with pytest.raises(ValueError, match="not a valid safetensors"):
        R.load_run(path)
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        R.load_run(path)


def test_load_refuses_bad_predictions_and_z(saved):
    run, path = saved
    df = pd.read_csv(path / "predictions.csv")
    df.loc[0, "score"] = 1.5
    df.to_csv(path / "predictions.csv", index=False)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        R.load_run(path)
    R.save_run(run, path, overwrite=True)
    from safetensors.numpy import save_file

    save_file({"z": np.zeros((2, 3), np.float32)}, str(path / "z.safetensors"))
    with pytest.raises(ValueError, match="Z has shape"):
        R.load_run(path)


def test_load_never_unpickles(saved, monkeypatch):
    _, path = saved

    def forbidden(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    R.load_run(path)


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("ours-a4", "ours-a4"),
        ("../../etc/passwd", "etc-passwd"),
        ("a b/c", "a-b-c"),
        (".hidden", "hidden"),
        ("sweep-a4-lw0.3", "sweep-a4-lw0.3"),
        ("x" * 300, "x" * 100),
        ("ünïcode run", "n-code-run"),
    ],
)
def test_sanitize_run_name(raw, clean):
    assert R.sanitize_run_name(raw) == clean


@pytest.mark.parametrize("raw", ["", "../", "///", "..", ".tmp-x", 5])
def test_sanitize_run_name_rejects_empty(raw):
    with pytest.raises(ValueError):
        R.sanitize_run_name(raw)


def test_unique_run_name(saved, tmp_path):
    _, path = saved
    assert R.unique_run_name(tmp_path, "new") == "new"
    assert R.unique_run_name(tmp_path, "unit-run") == "unit-run-2"
    (tmp_path / "unit-run-2").mkdir()
    assert R.unique_run_name(tmp_path, "unit run") == "unit-run-3"


def test_list_runs_skips_broken_and_ignores_temp_folders(saved, tmp_path):
    _, path = saved
    R.save_run(make_run(seed=2, name="second"), tmp_path / "second")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    (tmp_path / f"{TMP_PREFIX}half.123").mkdir()
    (tmp_path / "notes.txt").write_text("not a run")
    runs = R.list_runs(tmp_path)
    assert [r.name for r in runs] == ["second", "unit-run"]
    info = runs[1]
    assert (info.method, info.alpha, info.lambda_w, info.seed, info.bias_mode) == ("ours", 3.0, 0.3, 0, "label")
    assert info.metrics["spdd"]["value"] == 0.1
    assert [p.name for p, _ in runs.skipped] == ["broken"]
    assert "missing" in runs.skipped[0][1]
    assert R.list_runs(tmp_path / "nowhere") == []


# ---------------------------------------------------------------------------------------------
# Typed metrics (RunMetrics) and the JSON sanitiser

# metrics.json as the first shipped runs stored it (before schema_version 2 added the distances'
# test-inversion entries): a4-ours of the first `make models`
METRICS_V1 = {
    "n": 1200,
    "spdd": {"value": 0.016360527177651723, "ci_low": 0.010467853548626106, "ci_high": 0.021899336942782004},
    "speo": {"value": 0.011875441243063268, "ci_low": 0.006901830310685302, "ci_high": 0.017255628757683193},
    "pcc": {"value": 0.6292811757531911, "ci_low": 0.6004864699100365, "ci_high": 0.6540598797747694},
    "srcc": {"value": 0.6406571254563371, "ci_low": 0.6106860743428932, "ci_high": 0.6657866492826687},
    "spdd_grid50": 0.016299999999999995, "speo_grid50": 0.01211442942847802,
    "spdd_parts": {"0": 0.0, "1": 0.016360527177651723}, "groups": {"0": 600, "1": 600},
    "level": 0.95, "n_boot": 200, "random_state": 0, "val_pcc": 0.6568990626889881,
    "val_spdd": 0.013170359333356222, "best_epoch": 12, "score_std": 0.05260966067918684,
    "spdd_floor": {"mean": 0.004012702137231827, "p95": 0.0058705919533967995, "n_perm": 20},
}
SHIPPED = sorted(p for p in (REPO_ROOT / "models").glob("*/metrics.json"))


def test_run_metrics_reads_schema_1_and_gives_it_back_unchanged():
    m = R.RunMetrics.from_dict(METRICS_V1, strict=True)
    assert m.schema_version is None and m.n == 1200 and m.best_epoch == 12
    assert (m.spdd.value, m.spdd.ci_low, m.spdd.ci_high) == (0.016360527177651723, 0.010467853548626106,
                                                           0.021899336942782004)
    assert math.isnan(m.get("spdd", "p_value")) and m.spdd.word("ci_method") is None
    assert m.spdd_floor.mean == 0.004012702137231827 and m.get("spdd_floor", "p95") == 0.0058705919533967995
    assert m.spdd_grid50.value == 0.016299999999999995 and m.val_pcc.value == 0.6568990626889881
    assert m.groups == {"0": 600, "1": 600} and m.level == 0.95
    out = m.to_dict()
    assert out == METRICS_V1 and list(out) == list(METRICS_V1)
    assert json.dumps(out) == json.dumps(METRICS_V1)  # the same bytes on disk


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.parent.name)
def test_run_metrics_reads_every_shipped_metrics_file_unchanged(path):
    raw = json.loads(path.read_text())
    m = R.RunMetrics.from_dict(raw, strict=True)
    assert json.dumps(m.to_dict(), indent=2) == json.dumps(raw, indent=2)
    assert m.schema_version == raw["schema_version"] == 2
    for name in ("spdd", "speo"):  # schema 2: the distances' test-inversion entries
        assert m.get(name, "p_value") == raw[name]["p_value"] and m.get(name, "upper") == raw[name]["upper"]
        assert getattr(m, name).word("ci_method") == raw[name]["ci_method"]
    for name in ("pcc", "srcc", "spdd", "speo"):
        for part in ("value", "ci_low", "ci_high"):
            assert m.get(name, part) == raw[name][part]
            assert app_support.metric_value(raw, name, part) == raw[name][part]
    assert m.get("score_std") == raw["score_std"] and m.spdd_floor.mean == raw["spdd_floor"]["mean"]


def test_run_metrics_in_memory_is_sanitised_like_a_save_and_a_file_is_strict():
    raw = {"n": np.int64(5), "pcc": {"value": np.float32(0.5), "ci_low": float("nan"), "ci_high": 0.7},
           "val_pcc": float("nan"), "score_std": np.float64(0.25), "note": "kept"}
    m = R.RunMetrics.from_dict(raw)
    assert m.n == 5 and type(m.n) is int and m.pcc.value == 0.5 and math.isnan(m.pcc.ci_low)
    assert m.val_pcc is None and math.isnan(m.get("val_pcc")) and m.score_std.to_dict() == 0.25
    assert m.to_dict() == {"n": 5, "pcc": {"value": 0.5, "ci_low": None, "ci_high": 0.7}, "val_pcc": None,
                           "score_std": 0.25, "note": "kept"}
    assert m.extra == {"note": "kept"}
    with pytest.raises(ValueError, match="val_pcc must be a number"):
        R.RunMetrics.from_dict({"val_pcc": float("nan")}, strict=True)
    for bad, msg in [({"pcc": "high"}, "pcc must be"), ({"pcc": {"value": [1]}}, "pcc must be"),
                     ({"n_boot": "x"}, "n_boot must be an integer"), ({"n": 1.5}, "n must be an integer"),
                     ({"groups": {"0": 1.5}}, "groups must be"), ({"level": 2}, "level must be"),
                     ({"spdd": {"ci_method": 3}}, "spdd must be"), ([1], "JSON object")]:
        with pytest.raises(ValueError, match=msg):
            R.RunMetrics.from_dict(bad, strict=True)


def test_run_metrics_built_in_code_and_bare_numbers():
    m = R.RunMetrics(n=3, pcc=R.Estimate({"value": 0.5}), score_std=R.Estimate({"value": 0.1}, bare=True))
    assert m.to_dict() == {"n": 3, "pcc": {"value": 0.5}, "score_std": 0.1}
    bare = R.RunMetrics.from_dict({"pcc": 0.4, "spdd": None})
    assert bare.pcc.bare and bare.get("pcc") == 0.4 and math.isnan(bare.get("pcc", "ci_low"))
    assert bare.to_dict() == {"pcc": 0.4, "spdd": None}  # a key stored as null stays
    assert math.isnan(bare.get("srcc")) and math.isnan(bare.get("n"))  # absent, or not a metric
    assert app_support.metric_value({"pcc": 0.4}, "pcc") == 0.4
    assert math.isnan(app_support.metric_value({"pcc": 0.4}, "pcc", "ci_low"))


def test_every_reader_shows_the_stored_numbers(tmp_path):
    """The CLI summary, the experiment table row and the app's metric_value read a loaded run's
    metrics.json the same way: compared with the numbers in the file itself."""
    from fairviz.cli.train import summary_lines
    from fairviz.experiments import run_record

    src = REPO_ROOT / "models" / "a4-ours"
    raw = json.loads((src / R.METRICS_FILE).read_text())
    run = R.load_run(src)
    rec = run_record(run)
    for k in ("pcc", "srcc", "spdd", "speo", "val_pcc", "spdd_grid50", "score_std"):
        v = raw[k]["value"] if isinstance(raw[k], dict) else raw[k]
        assert rec[k] == v and app_support.metric_value(raw, k) == v, k
    assert rec["spdd_floor"] == raw["spdd_floor"]["mean"] and rec["spdd_floor_p95"] == raw["spdd_floor"]["p95"]
    assert rec["best_epoch"] == raw["best_epoch"]
    text = "\n".join(summary_lines(run))
    assert f"PCC {raw['pcc']['value']:.3f}" in text and f"SPDD {raw['spdd']['value']:.3f}" in text
    assert f"(floor {raw['spdd_floor']['mean']:.3f})" in text and f"n={raw['n']}" in text


def test_jsonable_turns_numpy_torch_paths_and_non_finite_into_json():
    from fairviz.jsonsafe import dumps, json_float, jsonable

    obj = {1: np.float32(0.5), "a": (np.int64(3), float("inf")), "p": Path("/x/y"), "s": {3, 1},
           "arr": np.arange(4), "big": np.zeros((10, 10)), "t": torch.tensor(2.5), "nan": np.nan, "o": object}
    out = jsonable(obj, max_array=20)
    assert out["1"] == 0.5 and out["a"] == [3, None] and out["p"] == "/x/y" and out["s"] == [1, 3]
    assert out["arr"] == [0, 1, 2, 3] and out["big"] == "<array (10, 10) float64>" and out["t"] == 2.5
    assert out["nan"] is None and out["o"] == str(object)
    assert type(out["a"][0]) is int
    json.dumps(out, allow_nan=False)
    assert json.loads(dumps({"x": [np.nan, 1]})) == {"x": [None, 1]}
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        jsonable({"o": object()}, strict=True)
    assert [json_float(v) for v in (None, np.float32(0.5), 2, float("-inf"), np.nan)] == [None, 0.5, 2.0, None, None]


def test_run_info_weight_is_the_methods_own_weight():
    by_name = {info.name: info for info in R.list_runs(REPO_ROOT / "models")}
    # read from config.json here, not through fairviz: the field each method's term reads
    own = {"ours": "lambda_w", "l2": "lambda_l2", "mmd": "lambda_mmd", "fairoffset": "lambda_sw"}
    for name, info in by_name.items():
        train = json.loads((info.path / "config.json").read_text())["train"]
        assert info.weight == (train[own[info.method]] if info.method in own else None), name
    assert by_name["a4-mmd"].weight == 0.15 and by_name["a4-vanilla"].weight is None
