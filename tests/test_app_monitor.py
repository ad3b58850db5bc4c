"""The Monitor page, driven by `streamlit.testing.v1.AppTest` (no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

st = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from fairviz import monitor  # noqa: E402
from tests._plotly_json import figure_json  # noqa: E402

# the AppTest fixtures of test_app (a fake models folder, fresh Streamlit caches) apply here too
from tests.test_app import _fresh_streamlit, models_dir  # noqa: E402, F401

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 90


def open_monitor() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("app_pages/monitor.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _errors(at) -> str:
    return " ".join(e.value for e in at.error).replace("\\", "")


def test_example_stream_shows_band_epsilon_alarm_and_peeking():
    at = open_monitor()
    specs = [figure_json(el.proto.spec) for el in at.get("plotly_chart")]
    assert len(specs) == 2  # SPDD and DP(0.5)
    spdd = specs[0]
    names = [t.get("name") for t in spdd["data"]]
    assert "95% anytime confidence sequence" in names and "fixed-sample test rejects (repeated at each look)" in names
    want = monitor.replay(monitor.example_stream(), "score", "group", "day", taus=(0.5,))
    assert [m.value for m in at.metric] == [f"{g.value:.4f}" for g in want.gaps()]
    assert f"{want.alarms['SPDD']['n']:,} decisions" in _errors(at)
    assert any(s.get("x0") == want.alarms["SPDD"]["n"] for s in spdd["layout"]["shapes"])
    assert any(s.get("y0") == 0.05 for s in spdd["layout"]["shapes"])  # the ε line


def _upload(at, key, name, data, mime="text/csv"):
    at.file_uploader(key=key).set_value((name, data, mime)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_upload_time_stamped_file_and_change_epsilon():
    rng = np.random.default_rng(0)
    group = rng.choice(["F", "M"], 4000)
    df = pd.DataFrame({"date": np.repeat(pd.date_range("2026-01-01", periods=20).astype(str), 200),
                       "score": rng.random(4000) * np.where(group == "M", 0.5, 1.0), "group": group})  # SPDD 0.25
    at = open_monitor()
    at.radio(key="fv_mon_source").set_value("upload").run()
    at = _upload(at, "fv_mon_upload", "stream.csv", df.to_csv(index=False).encode())
    assert len(at.get("plotly_chart")) == 2 and "Alarm" in _errors(at)
    assert [s.value for s in at.main.selectbox] == ["score", "group", "date"]
    at.number_input(key="fv_mon_eps").set_value(0.5).run()
    assert not at.exception and not at.error and len(at.success) == 2  # no gap is shown to exceed 0.5


def test_upload_with_bad_time_values_is_a_clear_error():
    df = pd.DataFrame({"time": ["2026-01-01", "later", "2026-01-02"], "score": [0.1, 0.5, 0.9],
                       "group": ["F", "M", "F"]})
    at = open_monitor()
    at.radio(key="fv_mon_source").set_value("upload").run()
    at = _upload(at, "fv_mon_upload", "s.csv", df.to_csv(index=False).encode())
    assert "neither numbers nor dates" in _errors(at) and "later" in _errors(at)


def test_open_a_state_file_and_refuse_a_tampered_one():
    state = monitor.replay(monitor.example_stream(n_days=8), "score", "group", "day")
    text = monitor.dumps(state)
    at = open_monitor()
    at.radio(key="fv_mon_source").set_value("state").run()
    at = _upload(at, "fv_mon_state", "night.json", text.encode(), "application/json")
    assert len(at.get("plotly_chart")) == 1 and not at.error
    doc = json.loads(text)
    doc["state"]["config"]["epsilon"] = 0.5
    at = _upload(at, "fv_mon_state", "night.json", json.dumps(doc).encode(), "application/json")
    assert "modified or damaged" in _errors(at) and not at.get("plotly_chart")
    at = _upload(at, "fv_mon_state", "x.json", b"\xff\xfe", "application/json")
    assert "not a fairviz monitor state" in _errors(at)
