"""The running app server against a memory bomb: a 0.7 MB Parquet upload that holds 10⁸ rows
(tens of GB once loaded) is refused with a clear message, and the server's memory stays under
RSS_BOUND_MB while it happens. Real `streamlit run app.py` on 127.0.0.1, real upload from
headless Chromium; the timing is recorded by bench/bench_bombs.py (bench/RESULTS.md)."""

from __future__ import annotations

import urllib.request

import pytest

from tests.reliability._bombs import parquet_bomb
from tests.reliability._load import streamlit_server, upload_and_wait_for_text
from tests.reliability.test_server_load import _browsers_available

RSS_BOUND_MB = 1536


@pytest.mark.slow
@pytest.mark.skipif(not _browsers_available(), reason="needs Playwright and Chromium")
def test_server_refuses_a_memory_bomb_upload_with_bounded_memory(tmp_path):
    from tests._app_runs import make_fake_models

    make_fake_models(tmp_path / "models")
    bomb = parquet_bomb(tmp_path / "scores.parquet")
    assert bomb.stat().st_size < 1.5e6
    with streamlit_server(tmp_path / "models", tmp_path) as server:
        r = upload_and_wait_for_text(server, bomb, "more than 2,000,000 rows")
        with urllib.request.urlopen(server.url + "/_stcore/health", timeout=10) as resp:
            assert resp.read().decode().strip() == "ok"
    print("\nbomb upload:", {k: round(v, 2) for k, v in r.items()})
    assert r["exceptions"] == 0
    assert r["rss_peak_mb"] < RSS_BOUND_MB and r["rss_after_mb"] < RSS_BOUND_MB, r
