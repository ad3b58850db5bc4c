"""Every page of the Streamlit app, driven by `streamlit.testing.v1.AppTest` (no browser).

The runs folder is a temporary one filled with real run folders holding synthetic predictions
(`tests/_app_runs.py`), so these tests need no training. Training from the Train page uses a
fake train function injected into `fairviz.jobs` (the real one is tested in test_jobs.py).
"""

from __future__ import annotations

import html as html_module
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

st = pytest.importorskip("streamlit")
from streamlit import config  # noqa: E402
from streamlit.runtime.media_file_manager import MediaFileManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages import _jobs  # noqa: E402
from fairviz import jobs, metrics, postprocess  # noqa: E402
from fairviz.app_services import budget  # noqa: E402
from fairviz.app_services.audit_view import metrics_frame  # noqa: E402
from fairviz.runs import save_run  # noqa: E402
from tests._app_runs import make_fake_models, make_fake_run  # noqa: E402
from tests._plotly_json import figure_json, plotly_shown  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 90  # seconds; the first run imports torch


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_fake_models(root)
    return root


@pytest.fixture(autouse=True)
def _fresh_streamlit(monkeypatch, models_dir):
    monkeypatch.setenv("FAIRVIZ_MODELS", str(models_dir))
    config.set_option("client.showErrorDetails", "full")  # tracebacks visible to the test
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def plotly_specs(at: AppTest) -> list[dict]:
    return [figure_json(el.proto.spec) for el in at.get("plotly_chart")]


def plain(text: str) -> str:
    """Markdown source as shown: the app backslash-escapes user-provided text."""
    return re.sub(r"\\(.)", r"\1", text)


def errors(at: AppTest) -> str:
    return plain(" ".join(e.value for e in at.error))


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [i.value for i in at.info] + [w.value for w in at.warning]
    parts += [s.value for s in at.success] + [s.value for s in at.subheader]
    return plain("\n".join(parts))


def metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0].value


def stored_metrics(models_dir, name):
    return json.loads((models_dir / name / "metrics.json").read_text())


# ------------------------------------------------------------------------------------ home


def test_home_shows_default_run_and_sample(models_dir):
    at = open_page()
    body = texts(at)
    assert "SPDD" in body and "ours-a4-label-lw1-s0" in body
    m = stored_metrics(models_dir, "ours-a4-label-lw1-s0")
    assert metric(at, "SPDD ↓") == f"{m['spdd']['value']:.3f}"
    assert metric(at, "PCC ↑") == f"{m['pcc']['value']:.3f}"
    assert at.sidebar.selectbox[0].value == "ours-a4-label-lw1-s0"
    assert at.get("video") and at.get("audio")


def test_sidebar_picker_changes_current_run(models_dir):
    at = open_page()
    at.sidebar.selectbox[0].set_value("vanilla-a4-label-s0").run()
    assert_clean(at)
    m = stored_metrics(models_dir, "vanilla-a4-label-s0")
    assert metric(at, "SPDD ↓") == f"{m['spdd']['value']:.3f}"
    # the choice follows the user to another page
    at.switch_page("app_pages/audit.py").run()
    assert_clean(at)
    assert "vanilla-a4-label-s0" in texts(at)


def test_pages_explain_how_to_create_runs_when_there_are_none(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRVIZ_MODELS", str(tmp_path / "empty"))
    for page in (None, "audit", "compare", "tradeoff", "representation", "train"):
        at = open_page(page)
        assert "make models" in texts(at), page


def test_unreadable_run_folder_is_reported_not_raised(models_dir, tmp_path, monkeypatch):
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    (root / "broken-run").mkdir()
    (root / "broken-run" / "config.json").write_text("{not json")
    monkeypatch.setenv("FAIRVIZ_MODELS", str(root))
    at = open_page()
    assert "broken-run" in texts(at)
    assert any("unreadable" in w.value for w in at.sidebar.warning)


# ------------------------------------------------------------------------------------ audit


def test_audit_current_run_cards_curve_and_tau(models_dir):
    at = open_page("audit")
    m = stored_metrics(models_dir, "ours-a4-label-lw1-s0")
    assert metric(at, "SPDD ↓") == f"{m['spdd']['value']:.3f}"
    assert metric(at, "SPEO ↓") == f"{m['speo']['value']:.3f}"
    specs = plotly_specs(at)
    dp = next(s for s in specs if any(str(t.get("name", "")).startswith("DP(τ)") for t in s["data"]))
    area = next(t for t in dp["data"] if t.get("fill") == "tozeroy")
    x, y = np.array(area["x"]), np.array(area["y"])
    assert np.sum(y[:-1] * np.diff(x)) == pytest.approx(m["spdd"]["value"], abs=1e-9)
    assert any(t.get("name", "").startswith("gap at τ = 0.50") for t in dp["data"])
    # move τ: only the marker moves; the text follows
    at.slider(key="fv_audit_tau").set_value(0.7).run()
    assert_clean(at)
    assert "At τ = 0.70" in texts(at)
    dp = next(s for s in plotly_specs(at) if any(str(t.get("name", "")).startswith("DP(τ)") for t in s["data"]))
    assert any(t.get("name", "").startswith("gap at τ = 0.70") for t in dp["data"])
    # impact-ratio table and LL144 table are there
    assert len(at.dataframe) >= 2
    assert "Four-fifths rule" in texts(at)


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    at.radio(key="fv_audit_source").set_value("upload").run()
    at.file_uploader(key="fv_audit_upload").set_value((name, data, mime)).run()
    return at


def test_audit_upload_good_csv(rng):
    n = 3000
    g = rng.choice(["F", "M"], n)
    label = rng.random(n)
    score = np.clip(0.3 + 0.4 * label + 0.1 * (g == "M") + rng.normal(0, 0.05, n), 0, 1)
    df = pd.DataFrame({"score": score, "sex": g, "label": label})
    at = _upload(open_page("audit"), "scores.csv", _csv(df))
    assert_clean(at)
    assert metric(at, "SPDD ↓") == f"{metrics.spdd(score, g):.3f}"
    assert metric(at, "PCC ↑") == f"{metrics.pcc(score, label):.3f}"
    assert "scores.csv" in texts(at)
    # repair section: θ = 1 removes (nearly all of) the gap
    assert float(metric(at, "SPDD after repair")) < 0.01
    at.select_slider(key="fv_audit_theta").set_value(0.5).run()
    assert_clean(at)
    half = float(metric(at, "SPDD after repair"))
    assert half == pytest.approx(metrics.spdd(score, g) / 2, abs=0.01)
    labels = [b.label for b in at.get("download_button")]
    assert any("repair map" in lbl for lbl in labels) and any("CSV" in lbl for lbl in labels)


def test_audit_upload_parquet_and_several_attributes(rng):
    n = 4000
    df = pd.DataFrame({
        "prediction": rng.random(n),
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["A", "B", "C", None], n, p=[0.4, 0.4, 0.15, 0.05]),
    })
    buf = io.BytesIO()
    df.to_parquet(buf)
    at = _upload(open_page("audit"), "scores.parquet", buf.getvalue(), "application/octet-stream")
    assert_clean(at)
    at.multiselect(key="fv_audit_groups").set_value(["sex", "race"]).run()
    assert_clean(at)
    views = at.radio(key="fv_audit_view").options
    assert views == ["sex", "race", "sex × race"]
    at.radio(key="fv_audit_view").set_value("sex × race").run()
    assert_clean(at)
    assert "unknown group excluded" in texts(at)
    assert metric(at, "PCC ↑") == "—"  # no label column


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.csv", b"", "empty"),
        ("header_only.csv", b"score,group\n", "no rows"),
        ("nan.csv", b"score,group\n0.5,a\n,b\n0.2,a\n", "empty value"),
        ("range.csv", b"score,group\n0.5,a\n1.7,b\n0.2,a\n", "outside [0, 1]"),
        ("text.csv", b"score,group\n0.5,a\nhigh,b\n0.2,a\n", "not numbers"),
        ("onegroup.csv", b"score,group\n0.5,a\n0.7,a\n0.2,a\n", "group"),
        ("bad.parquet", b"this is not parquet", "not a readable Parquet"),
    ],
)
def test_audit_upload_bad_files_give_clear_errors(name, data, message):
    at = open_page("audit")
    at.radio(key="fv_audit_source").set_value("upload").run()
    uploader = at.file_uploader(key="fv_audit_upload")
    uploader.set_value((name, data, "text/csv")).run()
    assert_clean(at)
    assert message in errors(at), errors(at)


def test_audit_upload_wrong_columns_chosen(rng):
    df = pd.DataFrame({"id": np.arange(50), "score": rng.random(50), "group": rng.integers(0, 2, 50)})
    at = _upload(open_page("audit"), "s.csv", _csv(df))
    assert_clean(at)
    at.selectbox(key="fv_audit_score").set_value("id").run()  # ids are not in [0, 1]
    assert_clean(at)
    assert "outside [0, 1]" in errors(at)
    at.selectbox(key="fv_audit_score").set_value("score").run()
    at.multiselect(key="fv_audit_groups").set_value([]).run()
    assert "at least one group column" in errors(at)


# ------------------------------------------------------------------------------------ compare


def test_compare_table_best_marked_and_curves(models_dir):
    at = open_page("compare")
    chosen = at.multiselect(key="fv_compare_runs").value
    assert len(chosen) == 6 and chosen[0].startswith("vanilla") and chosen[-1].startswith("ours")
    at.toggle(key="fv_compare_repair").set_value(False).run()
    body = texts(at)
    assert "SPDD ↓ → `ours-a4-label-lw1-s0`" in body  # the fake `ours` run has the smallest gap
    specs = plotly_specs(at)
    overlay = specs[0]
    assert len(overlay["data"]) == 6 and all("SPDD" in t["name"] for t in overlay["data"])
    assert len(specs) == 2
    at.multiselect(key="fv_compare_runs").set_value(chosen[:2]).run()
    assert_clean(at)
    assert len(plotly_specs(at)[0]["data"]) == 2


def test_compare_adds_each_run_plus_repair(models_dir):
    at = open_page("compare")
    assert at.toggle(key="fv_compare_repair").value is True
    at.slider(key="fv_compare_theta").set_value(0.5).run()
    assert_clean(at)
    table = at.dataframe[0].value
    row = "mmd-a4-label-lam0.15-s0 + repair θ=0.5"
    assert row in table.index and table.loc[row, "method"] == "mmd + repair"
    preds = pd.read_csv(models_dir / "mmd-a4-label-lam0.15-s0" / "predictions.csv")
    test = postprocess.repaired_test(preds, postprocess.fit_validation_repair(preds), 0.5)
    assert table.loc[row, "SPDD ↓"] == f"{metrics.spdd(test['score'], test['group']):.3f}"
    assert table.loc[row, "score spread"] == f"{test['score'].std(ddof=0):.3f}"


def _fake_k_group_run(**cfg):
    """A fake `ours` run on 4 groups (score gap rising with the group code) with config ``cfg``."""
    from fairviz.train import TrainConfig, compute_metrics  # noqa: PLC0415 - imports torch; AppTests of other pages must not

    run = make_fake_run("ours", 0.1, 0.0, 0.6)
    run.config = TrainConfig(method="ours", alpha=4.0, lambda_w=0.1, epochs=3, n_boot=50,
                             data_params={"group_shares": [0.1, 0.2, 0.3, 0.4]}, **cfg)
    preds = run.predictions
    preds["group"] = np.arange(len(preds)) % 4
    preds["score"] = np.clip(preds["score"] + 0.03 * preds["group"], 0, 1)
    test = preds[preds["split"] == "test"]
    floor = run.metrics["spdd_floor"]
    run.metrics = compute_metrics(test["score"].to_numpy(), test["group"].to_numpy(), test["label"].to_numpy(),
                                  run.config)
    run.metrics["spdd_floor"] = floor
    run.name = run.config.default_name()
    return run


def test_compare_shows_k_group_and_no_s_runs_beside_the_others(fake_training):
    """Runs of the no-S methods (dro, arl) and a 4-group run with S known for 10 % stand in the
    Compare table and figures beside the shipped methods; the 4-group run's SPDD is over 4 groups."""
    names = [save_run(make_fake_run(m, 1.0, gap, 0.6), fake_training / f"{m}-a4-label-s0").name
             for m, gap in (("dro", 0.08), ("arl", 0.11))]
    k4 = _fake_k_group_run(w1_form="pooled", s_fraction=0.1)
    names.append(save_run(k4, fake_training / k4.name).name)
    assert names[-1] == "ours-a4-label-lw0.1-s0-pooled-sf0.1"
    at = open_page("compare")
    at.multiselect(key="fv_compare_runs").set_value(["vanilla-a4-label-s0", "ours-a4-label-lw1-s0", *names]).run()
    assert_clean(at)
    table = at.dataframe[0].value
    for name in names:
        assert name in table.index and f"{name} + repair θ=1" in table.index
    assert table.loc["dro-a4-label-s0", "method"] == "dro" and table.loc["arl-a4-label-s0", "method"] == "arl"
    test = k4.predictions[k4.predictions["split"] == "test"]
    assert table.loc[names[-1], "SPDD ↓"].startswith(f"{metrics.spdd(test['score'], test['group']):.3f}")
    curves = [t["name"] for t in plotly_specs(at)[0]["data"]]  # the DP(τ) overlay: one curve per run
    assert len(curves) == 5 and all(any(c.startswith(n) for c in curves) for n in names)


# ------------------------------------------------------------------------------------ trade-off


def test_tradeoff_front_and_pick(models_dir):
    at = open_page("tradeoff")
    assert "left is fairer" in texts(at) and "up-left is best" in texts(at)
    spec = plotly_specs(at)[0]
    names = [t.get("name") for t in spec["data"]]
    main = [t for t in spec["data"] if t.get("name") == "ours"]
    assert sorted(main[0]["customdata"]) == sorted(
        ["ours-a4-label-lw0-s0", "ours-a4-label-lw0.3-s0", "ours-a4-label-lw1-s0", "ours-a4-label-lw3-s0"])
    # every method as trained, and every method + repair (theta curve), under one front
    for m in ("vanilla", "balancing", "adversarial", "l2", "mmd", "ours"):
        assert m in names and f"{m} + repair (θ 0→1)" in names, m
    assert "Pareto front (all pipelines)" in names
    assert spec["layout"]["meta"]["n_points"] == 9 + 6 * 10
    # the best pipeline for the accepted SPDD is named and starred
    assert "Best pipeline for SPDD ≤ 0.02" in texts(at)
    best = [t for t in spec["data"] if str(t.get("name", "")).startswith("best: ")][0]["name"]
    assert ("Post-processing wins here" in texts(at)) == best.endswith("+ repair")
    assert "The `ours` curve still jumps" in " ".join(w.value for w in at.warning)
    assert any(str(n).startswith("best: ") for n in names)
    at.selectbox(key="fv_tradeoff_pick").set_value("ours-a4-label-lw3-s0").run()
    assert_clean(at)
    assert "ours-a4-label-lw3-s0" in [s.value.strip("`") for s in at.subheader]
    m = stored_metrics(models_dir, "ours-a4-label-lw3-s0")
    assert metric(at, "SPDD ↓") == f"{m['spdd']['value']:.3f}"
    at.button(key="fv_to_current").click().run()
    assert_clean(at)
    assert at.sidebar.selectbox[0].value == "ours-a4-label-lw3-s0"


def test_tradeoff_accepted_spdd_moves_the_best_pipeline(models_dir):
    at = open_page("tradeoff")
    at.number_input(key="fv_to_eps").set_value(0.0).run()
    assert_clean(at)
    assert "No pipeline that keeps at least half of vanilla's score spread reaches SPDD ≤ 0" in " ".join(
        w.value for w in at.warning)
    at.number_input(key="fv_to_eps").set_value(0.5).run()
    assert_clean(at)
    assert "Best pipeline for SPDD ≤ 0.5" in texts(at)


def test_tradeoff_user_run_does_not_replace_the_shipped_point(fake_training):
    """A new run with the same method and λ as a shipped one is drawn next to it, not instead."""
    run = make_fake_run("ours", 0.3, 0.05, 0.62)
    save_run(run, fake_training / "my-ours-lw0.3")
    at = open_page("tradeoff")
    main = [t for t in plotly_specs(at)[0]["data"] if t.get("name") == "ours"][0]
    assert "my-ours-lw0.3" in main["customdata"] and "ours-a4-label-lw0.3-s0" in main["customdata"]


def test_tradeoff_run_without_validation_split_has_no_repair_curve(fake_training):
    run = make_fake_run("vanilla", 0.0, 0.12, 0.6, n_val=0)  # an older run: test rows only
    save_run(run, fake_training / "a4-vanilla")  # the shipped name: the page repairs this one
    at = open_page("tradeoff")
    assert "No repair curve for `a4-vanilla`" in " ".join(i.value for i in at.info)
    names = [t.get("name") for t in plotly_specs(at)[0]["data"]]
    assert "vanilla + repair (θ 0→1)" not in names and "mmd + repair (θ 0→1)" in names


def test_tradeoff_sweep_takes_free_weights(fake_training):
    at = open_page("tradeoff")
    at.selectbox(key="fv_sw_method").set_value("mmd").run()
    at.text_input(key="fv_sw_values").input("0.05 0.5").run()
    at.number_input(key="fv_sw_adaptive").set_value(0).run()
    at.number_input(key="fv_sw_epochs").set_value(1).run()
    at.button(key="fv_sw_go").click().run()
    assert_clean(at)
    snap = _wait_job(at, "fv_sweep_job")
    assert snap.state == "done", snap.error
    assert [r["weight"] for r in snap.results] == [0.05, 0.5]
    assert all(json.loads((fake_training / n / "config.json").read_text())["train"]["lambda_mmd"] in (0.05, 0.5)
               for n in snap.run_names)
    at.text_input(key="fv_sw_values").input("0.1 x").run()
    at.button(key="fv_sw_go").click().run()
    assert "'x' is not a number" in errors(at)


# ------------------------------------------------------------------------------------ representation


def test_representation_pca_and_distances(models_dir):
    at = open_page("representation")
    specs = plotly_specs(at)
    pca = specs[0]
    assert sum(str(t.get("name", "")).startswith("centroid,") and t.get("showlegend") is not False
               for t in pca["data"]) == 2  # one per group (repeated, unlabelled, in the score panel)
    bars = specs[1]["data"][0]
    assert len(bars["x"]) == 6
    d = dict(zip(bars["x"], bars["y"]))
    assert d["ours-a4-label-lw1-s0"] < d["vanilla-a4-label-s0"]  # the fake Z encodes the gap
    at.selectbox(key="fv_rep_focus").set_value("vanilla-a4-label-s0").run()
    assert_clean(at)
    pca = plotly_specs(at)[0]
    assert "vanilla-a4-label-s0" in pca["layout"]["title"]["text"]
    # one definition: the plot's distance is the bar chart's number for the same run
    line = [t["name"] for t in pca["data"] if str(t.get("name", "")).startswith("centroid distance")][0]
    bars = plotly_specs(at)[1]["data"][0]
    assert line.endswith(f"{dict(zip(bars['x'], bars['y']))['vanilla-a4-label-s0']:.3f}")
    assert pca["layout"]["meta"]["centroid_distance"] == pytest.approx(dict(zip(bars["x"], bars["y"]))["vanilla-a4-label-s0"])
    # the score colours follow the scores' range, not 0-1
    score_trace = [t for t in pca["data"] if t.get("name") == "score"][0]
    preds = pd.read_csv(models_dir / "vanilla-a4-label-s0" / "predictions.csv")
    test = preds[preds["split"] == "test"]["score"]
    assert score_trace["marker"]["cmin"] == pytest.approx(test.min()) and score_trace["marker"]["cmax"] == pytest.approx(test.max())


# ------------------------------------------------------------------------------------ train


@pytest.fixture
def fake_training(monkeypatch, tmp_path, models_dir):
    """A private runs folder and a fake `train` (fast, honours cancel) inside fairviz.jobs."""
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    monkeypatch.setenv("FAIRVIZ_MODELS", str(root))

    def fake_train(config, progress=None, cancel=None):
        for e in range(1, config.epochs + 1):
            if cancel is not None and cancel.is_set():
                from fairviz.train import TrainingCancelled  # noqa: PLC0415 - imports torch; AppTests of other pages must not

                raise TrainingCancelled("cancelled")
            progress({"stage": "epoch", "epoch": e, "epochs": config.epochs, "losses": {"mse": 0.1 / e},
                      "val_pcc": 0.3, "val_spdd": 0.05})
        run = make_fake_run(config.method, config.lambda_w, 0.03, 0.6)
        run.config = config
        return run

    def fake_in_process(config, root, base, cancel, on_progress):  # the worker process, minus the process
        run = fake_train(config, on_progress, cancel)
        path = jobs.save_unique(run, root, base)
        return {"name": path.name, "path": str(path), "metrics": run.metrics}

    monkeypatch.setattr(jobs.job_worker, "run_in_process", fake_in_process)
    return root


def _wait_job(at: AppTest, key: str, timeout: float = 20.0):
    job = at.session_state[key]
    reg = _jobs.job_registry()
    snap = reg.wait(job, timeout)
    assert snap.done, snap
    return snap


def test_train_page_trains_in_background_and_saves(fake_training):
    at = open_page("train")
    at.selectbox(key="fv_train_method").set_value("ours").run()
    at.number_input(key="fv_train_w_lambda_w").set_value(3.0).run()
    at.number_input(key="fv_train_epochs").set_value(2).run()
    at.button(key="fv_train_go").click().run()
    assert_clean(at)
    snap = _wait_job(at, "fv_train_job")
    assert snap.state == "done", snap.error
    at.run()  # the page now draws the final state, makes the new run current, stops polling
    assert_clean(at)
    assert "Saved" in texts(at)
    assert (fake_training / snap.run_name / "config.json").exists()
    assert snap.run_name.startswith("ours-a4-label-lw3-s0")
    assert at.sidebar.selectbox[0].value == snap.run_name
    # the same config again never overwrites
    at.button(key="fv_train_go").click().run()
    snap2 = _wait_job(at, "fv_train_job")
    assert snap2.run_name != snap.run_name and (fake_training / snap2.run_name).exists()


def test_train_page_target_spdd_and_selection_protocol(fake_training):
    at = open_page("train")
    at.selectbox(key="fv_train_method").set_value("fairoffset").run()
    at.number_input(key="fv_train_target").set_value(0.02).run()
    at.radio(key="fv_train_sel").set_value("biased").run()
    at.selectbox(key="fv_train_fairrows").set_value("labelled").run()
    at.number_input(key="fv_train_epochs").set_value(1).run()
    at.button(key="fv_train_go").click().run()
    assert_clean(at)
    snap = _wait_job(at, "fv_train_job")
    cfg = json.loads((fake_training / snap.run_name / "config.json").read_text())["train"]
    assert (cfg["method"], cfg["target_spdd"], cfg["val_labels"]) == ("fairoffset", 0.02, "biased")
    assert cfg["fairness_rows"] == "labelled"


def test_train_page_warns_past_the_safe_weight():
    at = open_page("train")
    at.selectbox(key="fv_train_method").set_value("fairoffset").run()
    at.number_input(key="fv_train_w_lambda_sw").set_value(0.3).run()
    assert_clean(at)
    assert not [w for w in at.warning if "above 0.3" in w.value]
    at.number_input(key="fv_train_w_lambda_sw").set_value(1.0).run()
    assert [w for w in at.warning if "weight 1 is above 0.3" in w.value]


def test_train_page_bad_data_source_is_an_error(fake_training, tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRVIZ_DATA_ROOT", str(tmp_path))
    at = open_page("train")
    at.radio(key="fv_train_source").set_value("manifest").run()
    at.text_input(key="fv_train_path").input("/nowhere/manifest.csv").run()
    at.button(key="fv_train_go").click().run()
    assert_clean(at)
    assert "manifest CSV not found" in errors(at)
    assert "fv_train_job" not in at.session_state


def test_train_page_load_existing_run(fake_training):
    at = open_page("train")
    at.selectbox(key="fv_load_pick").set_value("balancing-a4-label-s0").run()
    at.button(key="fv_load_go").click().run()
    assert_clean(at)
    assert at.sidebar.selectbox[0].value == "balancing-a4-label-s0"


# ------------------------------------------------------------------------------------ scale


def test_audit_million_rows_is_exact_and_drawn_small(rng):
    n = 1_000_000
    g = rng.choice(["F", "M"], n)
    label = rng.random(n)
    score = np.clip(0.3 + 0.4 * label + 0.1 * (g == "M") + rng.normal(0, 0.05, n), 0, 1)
    data = _csv(pd.DataFrame({"score": score, "sex": g, "label": label}))
    at = open_page("audit")
    at.radio(key="fv_audit_source").set_value("upload").run()
    at.file_uploader(key="fv_audit_upload").set_value(("big.csv", data, "text/csv")).run()
    assert_clean(at)
    assert metric(at, "SPDD ↓") == f"{metrics.spdd(score, g):.3f}"  # exact, not sampled
    for spec in at.get("plotly_chart"):
        assert len(spec.proto.spec) < 600_000  # downsampled drawing
    assert "Intervals are not computed automatically" not in texts(at)  # the little bootstraps fit the budget
    assert "bag of little bootstraps" in texts(at)
    assert "(p ≤ 0.001)" in texts(at)  # SPDD's test: the page's 1,000 shuffles, also with the intervals
    at.slider(key="fv_audit_tau").set_value(0.62).run()
    assert "At τ = 0.62" in texts(at)


def test_audit_intervals_on_request(rng, monkeypatch):
    monkeypatch.setattr(budget, "BOOT_COST_PER_ROW", {False: 1.0, True: 1.0})  # "too slow": ask first
    n = 2000
    df = pd.DataFrame({"score": rng.random(n), "group": rng.integers(0, 2, n), "label": rng.random(n)})
    at = _upload(open_page("audit"), "s.csv", _csv(df))
    assert "Intervals are not computed automatically" in texts(at)
    assert "95 % CI" not in texts(at)
    at.button(key="fv_ci_btn_group").click().run()
    assert_clean(at)
    assert "95 % CI" in texts(at) and "200 resamples" in texts(at)


def test_widget_values_survive_a_page_switch():
    at = open_page("train")
    at.number_input(key="fv_train_epochs").set_value(7).run()
    at.selectbox(key="fv_train_method").set_value("mmd").run()
    at.switch_page("app_pages/compare.py").run()
    assert_clean(at)
    at.switch_page("app_pages/train.py").run()
    assert_clean(at)
    assert at.number_input(key="fv_train_epochs").value == 7
    assert at.selectbox(key="fv_train_method").value == "mmd"


def test_user_text_cannot_inject_markup(rng):
    n = 400
    g = np.where(np.arange(n) % 2, "<b>bold</b>", "[link](http://example.com)")
    df = pd.DataFrame({"score": rng.random(n), "grp`x": g})
    at = _upload(open_page("audit"), "a_[b](c).csv", _csv(df))
    assert_clean(at)
    caps = " ".join(c.value for c in at.caption)
    assert "\\[link\\]\\(http" in caps  # escaped markdown: shown as text, not a link
    assert "`grpʼx`" in caps or "grpʼx" in caps
    for spec in plotly_specs(at):
        names = " ".join(str(t.get("name", "")) for t in spec["data"])
        assert "<b>" not in names
    assert "&lt;b&gt;bold&lt;/b&gt;" in " ".join(str(t.get("name", "")) for t in plotly_specs(at)[0]["data"])


def test_train_page_sets_the_methods_own_weight(fake_training):
    at = open_page("train")
    at.selectbox(key="fv_train_method").set_value("mmd").run()
    assert_clean(at)
    at.number_input(key="fv_train_w_lambda_mmd").set_value(0.3).run()
    at.number_input(key="fv_train_epochs").set_value(1).run()
    at.button(key="fv_train_go").click().run()
    snap = _wait_job(at, "fv_train_job")
    assert snap.state == "done", snap.error
    assert snap.run_name == "mmd-a4-label-lam0.3-s0"
    at.selectbox(key="fv_train_method").set_value("vanilla").run()
    assert "has no fairness weight" in texts(at)


# ------------------------------------------------------------------------------------ audit: text as written


@pytest.fixture
def deferred_downloads(monkeypatch):
    """file name -> the callables deferred `st.download_button`s registered, oldest first
    (AppTest cannot click a download; the test calls the callable as the server would)."""
    seen: dict = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        seen.setdefault(file_name, []).append(data_callable)
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


AWKWARD = ["<40", ">55", "A&B \"q\" 's'"]


def test_group_names_with_markup_characters_shown_exactly(rng, deferred_downloads):
    n = 3000
    g = rng.choice(AWKWARD, n)
    score = np.clip(rng.random(n) * 0.8 + 0.2 * (g == "<40"), 0, 1)
    at = _upload(open_page("audit"), "s.csv", _csv(pd.DataFrame({"score": score, "age": g})))
    assert_clean(at)
    tables = [d.value for d in at.dataframe if "group" in d.value.columns]
    assert len(tables) >= 2  # the table at τ and the LL144 table
    for t in tables:
        assert sorted(t["group"]) == sorted(AWKWARD), t["group"].tolist()
    assert "&lt;" not in texts(at) and "&amp;" not in texts(at)
    for spec in plotly_specs(at):
        for trace in spec["data"]:
            name = str(trace.get("name", ""))
            assert "<" not in name.replace("<br>", "")  # nothing plotly could read as a tag
    legend = " ".join(plotly_shown(str(t.get("name", ""))) for s in plotly_specs(at) for t in s["data"])
    for name in AWKWARD:
        assert name in legend, (name, legend[:500])
    html = deferred_downloads["s-audit.html"][-1]().decode()
    # each name is one table cell that reads as the name once the HTML entities are decoded
    # (whatever entity spelling the template engine uses), and no cell holds a raw tag character
    cells = re.findall(r"<td>([^<]*)</td>", html)
    for name in AWKWARD:
        assert name in {html_module.unescape(c) for c in cells}, name
    assert "&amp;lt;" not in html and "&amp;gt;" not in html and "&amp;quot;" not in html


def test_report_download_uses_the_tau_on_screen(rng, deferred_downloads):
    n = 2000
    df = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n)})
    at = _upload(open_page("audit"), "s.csv", _csv(df))
    drawn = deferred_downloads["s-audit.html"][-1]
    at.slider(key="fv_audit_tau").set_value(0.3).run()
    assert_clean(at)
    # In the browser moving τ reruns only the τ fragment, so the button drawn before stays the
    # live one (AppTest reruns the whole page): its callable must read the τ now on screen.
    html = drawn().decode()
    assert "Four-fifths check at τ = 0.30" in html and "τ = 0.50" not in html


def test_ll144_table_flags_impact_ratios_under_four_fifths(rng):
    # above the overall median: F 0.40 of its rows, M 0.60 -> impact ratio 0.67
    n = 5000
    g = np.where(np.arange(n) % 2, "F", "M")
    top = np.where(g == "F", rng.random(n) < 0.4, rng.random(n) < 0.6)
    score = np.where(top, 0.6 + 0.4 * rng.random(n), 0.4 * rng.random(n))
    at = _upload(open_page("audit"), "s.csv", _csv(pd.DataFrame({"score": score, "sex": g})))
    assert_clean(at)
    at.slider(key="fv_audit_tau").set_value(0.05).run()  # nearly everyone selected: the τ check holds
    ll144 = next(d.value for d in at.dataframe if "scoring rate" in d.value.columns)
    flagged = dict(zip(ll144["group"], ll144["under four-fifths (< 0.8)"]))
    ratio = dict(zip(ll144["group"], ll144["impact ratio"]))
    assert ratio["F"] < 0.8 and flagged == {"F": True, "M": False}
    assert "Four-fifths rule fails for the LL144 scoring rates of **F** (0.6" in errors(at)
    ok = " ".join(s.value for s in at.success)
    assert "selection rates at τ = 0.05" in ok and "LL144 scoring-rate table below is a separate check" in ok


def test_metrics_csv_names_its_attribute(rng):
    n = 1000
    df = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n), "race": rng.choice(["a", "b"], n)})
    at = _upload(open_page("audit"), "s.csv", _csv(df))
    at.multiselect(key="fv_audit_groups").set_value(["sex", "race"]).run()
    at.radio(key="fv_audit_view").set_value("race").run()
    assert_clean(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Metrics by race (CSV)" in labels, labels
    frame = metrics_frame({"spdd": {"value": 0.1, "ci_low": 0.05, "ci_high": 0.2}}, attribute="sex × race")
    assert list(frame.columns) == ["attribute", "metric", "value", "ci_low", "ci_high", "upper", "p_value"]
    assert frame["attribute"].tolist() == ["sex × race"]
    noted = metrics_frame({"spdd": {"value": 0.1}}, attribute="sex", note="Scores rescaled from [0, 100]")
    assert noted["note"].tolist() == ["Scores rescaled from [0, 100]"]


def test_audit_rescales_scores_on_request_and_says_so(rng, deferred_downloads):
    n = 2000
    g = rng.choice(["F", "M"], n)
    score = np.clip(rng.random(n) + 0.1 * (g == "M"), 0, 1)
    at = _upload(open_page("audit"), "pct.csv", _csv(pd.DataFrame({"score": score * 100, "sex": g})))
    assert "outside [0, 1]" in errors(at)
    at.toggle(key="fv_audit_rescale").set_value(True).run()
    assert_clean(at)
    assert metric(at, "SPDD ↓") == f"{metrics.spdd(score, g):.3f}"
    note = "Scores rescaled from [0, 100] to [0, 1]"
    assert note in texts(at)
    assert note in deferred_downloads["pct-audit.html"][-1]().decode()
    at.number_input(key="fv_audit_range_high").set_value(50.0).run()
    assert "outside the given score range [0, 50]" in errors(at)
    at.number_input(key="fv_audit_range_low").set_value(60.0).run()
    assert "needs LOW < HIGH" in errors(at)


def test_representation_says_when_ours_separates_more_than_vanilla(fake_training):
    save_run(make_fake_run("ours", 0.5, 0.3, 0.6), fake_training / "ours-far")  # Z encodes a big gap
    at = open_page("representation")
    at.multiselect(key="fv_rep_runs").set_value(["vanilla-a4-label-s0", "ours-far"]).run()
    assert_clean(at)
    info = " ".join(i.value for i in at.info)
    assert "Here `ours` separates the groups more than `vanilla`" in info
    at.multiselect(key="fv_rep_runs").set_value(["vanilla-a4-label-s0", "ours-a4-label-lw1-s0"]).run()
    assert "separates the groups more" not in " ".join(i.value for i in at.info)

def test_train_page_k_groups_and_partly_known_s(fake_training):
    """The attribute (binary / 4 groups) and the share of rows with a known S reach TrainConfig;
    a no-S method disables the share."""
    at = open_page("train")
    at.radio(key="fv_train_attr").set_value("k4").run()
    at.selectbox(key="fv_train_method").set_value("ours").run()
    at.select_slider(key="fv_train_sfrac").set_value(0.1).run()
    at.number_input(key="fv_train_epochs").set_value(1).run()
    at.button(key="fv_train_go").click().run()
    assert_clean(at)
    snap = _wait_job(at, "fv_train_job")
    assert snap.state == "done", snap.error
    cfg = json.loads((fake_training / snap.run_name / "config.json").read_text())["train"]
    assert cfg["data_params"] == {"group_shares": [0.1, 0.2, 0.3, 0.4]} and cfg["s_fraction"] == 0.1
    at.selectbox(key="fv_train_method").set_value("dro").run()
    assert at.select_slider(key="fv_train_sfrac").disabled
    assert any("never reads S" in c.value for c in at.caption)


@pytest.mark.parametrize("kind", ["one", "absent"])
def test_train_page_bad_groups_are_an_error(fake_training, monkeypatch, kind):
    """An attribute with one group, or a group absent from the training split: the job fails
    with the training's own message, shown as st.error (the real `train` on such features)."""
    from fairviz.train import train  # noqa: PLC0415 - imports torch; AppTests of other pages must not
    from tests.test_train_kgroups import BAD_GROUPS, bad_group_features  # noqa: PLC0415 - likewise

    def train_on_bad_groups(config, root, base, cancel, on_progress):
        train(config, progress=on_progress, cancel=cancel, features=bad_group_features(kind))
        raise AssertionError("training should have refused these groups")

    monkeypatch.setattr(jobs.job_worker, "run_in_process", train_on_bad_groups)
    at = open_page("train")
    at.button(key="fv_train_go").click().run()
    snap = _wait_job(at, "fv_train_job")
    assert snap.state == jobs.FAILED and BAD_GROUPS[kind] in snap.error
    at.run()
    assert_clean(at)
    assert "Training failed" in errors(at) and BAD_GROUPS[kind] in errors(at)


def test_train_page_s_fraction_outside_0_1_is_an_error(fake_training, monkeypatch):
    """The slider offers shares in (0, 1] only; were 0 offered, the page would refuse it with
    TrainConfig's message as st.error and start no job."""
    from fairviz import kgroups  # noqa: PLC0415 - imports torch; AppTests of other pages must not

    monkeypatch.setattr(kgroups, "S_FRACTIONS", (0.0, 0.5, 1.0))
    at = open_page("train")
    at.select_slider(key="fv_train_sfrac").set_value(0.0).run()
    at.button(key="fv_train_go").click().run()
    assert_clean(at)
    assert "s_fraction (share of training rows whose group is known) must be in (0, 1]" in errors(at)
    assert "fv_train_job" not in at.session_state


def test_train_page_sets_frames_and_size_for_videos(fake_training, tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRVIZ_DATA_ROOT", str(tmp_path))  # server paths are read inside the data root
    csv = tmp_path / "manifest.csv"
    csv.write_text("video,label,group\na.mp4,0.5,f\n")
    at = open_page("train")
    assert "fv_train_frames" not in [w.key for w in at.number_input]  # not for synthetic data
    at.radio(key="fv_train_source").set_value("manifest").run()
    at.text_input(key="fv_train_path").input("manifest.csv").run()
    assert at.number_input(key="fv_train_frames").value == 8 and at.number_input(key="fv_train_size").value == 32
    at.number_input(key="fv_train_frames").set_value(30).run()
    at.number_input(key="fv_train_size").set_value(112).run()
    at.button(key="fv_train_go").click().run()
    assert_clean(at)
    snap = _wait_job(at, "fv_train_job")
    assert snap.state == "done", snap.error
    stored = json.loads((fake_training / snap.run_name / "config.json").read_text())
    assert (stored["train"]["frames"], stored["train"]["size"]) == (30, 112)
    assert Path(stored["train"]["data"]).resolve() == csv.resolve()
