"""The app's plain computations (`fairviz.app_support`): no Streamlit needed."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from fairviz import app_support as A


@dataclass(frozen=True)
class Info:
    name: str
    method: str
    alpha: float = 4.0
    lambda_w: float = 1.0
    seed: int = 0
    bias_mode: str = "label"
    metrics: dict = field(default_factory=dict)


def _m(pcc, spdd):
    return {"pcc": {"value": pcc, "ci_low": pcc - 0.05, "ci_high": pcc + 0.05},
            "srcc": {"value": pcc - 0.01, "ci_low": None, "ci_high": None},
            "spdd": {"value": spdd, "ci_low": spdd / 2, "ci_high": spdd * 2},
            "spdd_floor": {"mean": 0.01, "p95": 0.02}, "n": 1200}


INFOS = [
    Info("vanilla-a4", "vanilla", metrics=_m(0.40, 0.14)),
    Info("ours-a4-lw0", "ours", lambda_w=0.0, metrics=_m(0.41, 0.13)),
    Info("ours-a4-lw1", "ours", metrics=_m(0.45, 0.02)),
    Info("ours-a4-lw1-s1", "ours", seed=1, metrics=_m(0.44, 0.03)),
    Info("ours-a4-lw3", "ours", lambda_w=3.0, metrics=_m(0.30, 0.01)),
    Info("mmd-a4", "mmd", metrics=_m(0.42, 0.10)),
    Info("mmd-a2", "mmd", alpha=2.0, metrics=_m(0.43, 0.05)),
    Info("ours-a4-sample", "ours", bias_mode="sample", metrics=_m(0.35, 0.03)),
]


def test_pick_default_run():
    assert A.pick_default_run([]) is None
    assert A.pick_default_run(INFOS).name == "ours-a4-lw1"
    assert A.pick_default_run(INFOS + [Info("a4-ours", "ours", lambda_w=0.3)]).name == "a4-ours"
    assert A.pick_default_run([Info("zeta", "mmd"), Info("alpha", "vanilla")]).name == "alpha"


def test_runs_frame_and_metric_format():
    df = A.runs_frame(INFOS)
    assert df["method"].tolist()[:1] == ["vanilla"] and df["method"].tolist()[-3:] != []
    row = df.set_index("name").loc["ours-a4-lw1"]
    assert row["pcc"] == 0.45 and row["pcc_low"] == pytest.approx(0.40) and row["spdd_floor"] == 0.01
    assert np.isnan(row["speo"]) and np.isnan(row["srcc_low"])
    assert A.format_metric(INFOS[2].metrics, "spdd") == "0.020 [0.010, 0.040]"
    assert A.format_metric(INFOS[2].metrics, "srcc") == "0.440"
    assert A.format_metric({}, "speo") == "—"


def test_default_compare_names():
    names = A.default_compare_names(INFOS, alpha=4.0)
    assert names == ["vanilla-a4", "mmd-a4", "ours-a4-lw1"]  # paper order, λ_W = 1, seed 0, rater bias
    assert A.default_compare_names(INFOS, alpha=2.0) == ["mmd-a2"]
    # the shipped run of a method wins over a sweep run with λ_W = 1
    shipped = INFOS + [Info("a4-ours", "ours", lambda_w=0.3), Info("sweep-a4-lw1", "ours", lambda_w=1.0)]
    assert A.default_compare_names(shipped, alpha=4.0)[-1] == "a4-ours"


def test_parse_weights_and_group_names():
    assert A.parse_weights("0.5, 0 1;0.5  3") == [0.0, 0.5, 1.0, 3.0]
    for bad, msg in (("", "at least one"), ("0.1 x", "'x' is not a number"), ("-1", ">= 0"), ("inf", ">= 0")):
        with pytest.raises(ValueError, match=msg):
            A.parse_weights(bad)
    synth = {"features_meta": {"group_labels": [0, 1], "privileged": 1}}
    assert A.group_names(synth) == {0: "group 0 (unprivileged)", 1: "group 1 (privileged)"}
    manifest = {"features_meta": {"group_labels": ["f<x>", "m"], "privileged": "m"}}
    assert A.group_names(manifest) == {0: "f<x> (unprivileged)", 1: "m (privileged)"}  # as written
    assert A.group_names({}) == {0: "group 0", 1: "group 1"}


def test_read_uploaded_table_and_errors():
    df = A.read_uploaded_table(b"score,group\n0.5,a\n0.2,b\n", "x.csv")
    assert list(df.columns) == ["score", "group"] and len(df) == 2
    buf = io.BytesIO()
    pd.DataFrame({"s": [0.1, 0.9], "g": [1, 0]}).to_parquet(buf)
    assert len(A.read_uploaded_table(buf.getvalue(), "x.parquet")) == 2
    for data, name, msg in [
        (b"", "x.csv", "empty"),
        (b"score,group\n", "x.csv", "no rows"),
        (b"score;group\n0.5;a\n", "x.csv", "separator"),
        (b"PAR1 garbage", "x.parquet", "not a readable Parquet"),
        (b"a,b\n1,2\n", "x.xlsx", ".csv or .parquet"),
        (b"\xff\xfe\x00\x01", "x.csv", "x.csv"),
    ]:
        with pytest.raises(ValueError, match=msg):
            A.read_uploaded_table(data, name)


def test_audit_columns_checks_name_the_column():
    df = pd.DataFrame({"score": [0.1, 0.5, 0.9, 0.3], "sex": ["F", "M", "F", None], "y": [0.2, 0.4, 0.6, 0.8],
                       "id": [1, 2, 3, 4], "txt": ["a", "b", "c", "d"]})
    s, attrs, y = A.audit_columns(df, "score", ["sex"], "y")
    assert s.tolist() == [0.1, 0.5, 0.9, 0.3] and list(attrs) == ["sex"] and y.tolist() == [0.2, 0.4, 0.6, 0.8]
    assert A.audit_columns(df, "score", ["sex"])[2] is None
    with pytest.raises(ValueError, match=r"score column 'id'.*outside \[0, 1\].*row 1: 2\)"):
        A.audit_columns(df, "id", ["sex"])
    with pytest.raises(ValueError, match="score column 'txt'.*not numbers"):
        A.audit_columns(df, "txt", ["sex"])
    with pytest.raises(ValueError, match="no column"):
        A.audit_columns(df, "nope", ["sex"])
    with pytest.raises(ValueError, match="different columns"):
        A.audit_columns(df, "score", ["score"])
    with pytest.raises(ValueError, match="at least one group"):
        A.audit_columns(df, "score", [])
    one = df.assign(sex="F")
    with pytest.raises(ValueError, match="group column 'sex'"):
        A.audit_columns(one, "score", ["sex"])
    gap = df.assign(score=[0.1, None, 0.3, 0.4])
    with pytest.raises(ValueError, match="1 empty value.*row 1"):
        A.audit_columns(gap, "score", ["sex"])


def test_auto_n_boot_budget():
    assert A.auto_n_boot(1000, True) == 1000
    assert A.auto_n_boot(1_000_000, False) == 1000
    assert A.auto_n_boot(150_000, True) == 250  # the exact bootstrap: 12 ms per resample
    assert A.auto_n_boot(1_000_000, True) == 700  # the little bootstraps: ~4 ms (1.3–2.2 ms measured)
    assert A.auto_n_boot(100_000_000, True) == 0  # offered on request instead
    assert A.auto_n_boot(0, True) == 0
    assert A.boot_seconds(150_000, True, 200) == pytest.approx(8e-8 * 150_000 * 200)


def test_resolve_data_source(tmp_path):
    assert A.resolve_data_source("synthetic") == "synthetic"
    csv = tmp_path / "m.csv"
    csv.write_text("video,label,group\n")
    root = tmp_path.resolve()  # paths are typed relative to the operator's data root
    assert A.resolve_data_source("manifest", "m.csv", root=root) == str(root / "m.csv")
    with pytest.raises(FileNotFoundError, match="manifest CSV not found"):
        A.resolve_data_source("manifest", "none.csv", root=root)
    with pytest.raises(ValueError, match="enter the path"):
        A.resolve_data_source("manifest", "  ", root=root)
    with pytest.raises(FileNotFoundError, match="First Impressions folder not found"):
        A.resolve_data_source("first_impressions", "nope", root=root)
    with pytest.raises(ValueError, match="unknown data source"):
        A.resolve_data_source("youtube", "x")


def test_sample_interview_written_once(tmp_path):
    out = tmp_path / "sample"
    a = A.sample_interview(out)
    assert a["video"].exists() and a["wav"].exists() and a["transcript"]
    mtime = a["video"].stat().st_mtime_ns
    b = A.sample_interview(out)
    assert b == a and b["video"].stat().st_mtime_ns == mtime


def test_ties_with_best_marks_overlapping_intervals():
    frame = pd.DataFrame({"spdd": [0.010, 0.012, 0.1], "spdd_low": [0.0, 0.0, 0.08], "spdd_high": [0.02, 0.03, 0.12]},
                         index=["a", "b", "c"])
    assert A.ties_with_best(frame, {"spdd": False}) == {"spdd": ["b"]}
