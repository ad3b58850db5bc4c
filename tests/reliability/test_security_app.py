"""The app's pages against hostile run folders and hostile uploads (AppTest, no browser):
damaged runs never break a page, text from run folders and users is never markdown, a bad run
name is refused before training, out-of-memory is an st.error, "NA" is a group, group counts are
capped, right-to-left overrides are isolated. The real server's memory is
test_security_server.py.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from app_pages import _audit_data, _jobs  # noqa: E402
from fairviz import app_support, jobs  # noqa: E402
from tests._app_runs import make_fake_run  # noqa: E402
from tests.reliability.test_security_files import DAMAGED, _edit_json  # noqa: E402
from tests.reliability.test_security_limits import NA_TABLE  # noqa: E402

# with test_app's AppTest fixtures (a fake models folder, fresh Streamlit caches)
from tests.test_app import (  # noqa: E402, F401
    _fresh_streamlit,
    _upload,
    assert_clean,
    errors,
    models_dir,
    open_page,
    texts,
)

EVIL_MD = "[click me](http://evil.example/phish) ![img](http://evil.example/pixel.png)"


def _hostile_models(models_dir, tmp_path, monkeypatch):
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    good = next(p for p in sorted(root.iterdir()) if p.is_dir())
    for name, (file, change) in DAMAGED.items():
        _edit_json(shutil.copytree(good, root / f"zz-{name}") / file, **change)
    _edit_json(shutil.copytree(good, root / "zz-phish") / "config.json", format_version=EVIL_MD)
    monkeypatch.setenv("FAIRVIZ_MODELS", str(root))
    return root


def _unescaped_links(at) -> list[str]:
    """Markdown sources holding a link or image that would render (``](`` not escaped)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return [p for p in parts if re.search(r"(?<!\\)\]\((?!\s)", p) and "evil" in p]


def test_damaged_runs_never_break_a_page_and_their_text_is_not_markdown(models_dir, tmp_path, monkeypatch):
    _hostile_models(models_dir, tmp_path, monkeypatch)
    at = open_page()  # asserts no exception
    shown = texts(at)
    assert "zz-phish" in shown and "evil.example" in shown and not _unescaped_links(at)
    for name in DAMAGED:
        assert f"zz-{name}" in shown
    for page in ("compare", "tradeoff", "representation", "audit"):
        at = open_page(page)
        assert not _unescaped_links(at), page
    at = open_page("train")
    at.button(key="fv_load_go").click().run()
    assert_clean(at)


def test_bad_run_name_is_refused_before_training(monkeypatch):
    launched = []
    monkeypatch.setattr(jobs.JobRegistry, "_launch", lambda self, *a, **k: launched.append(a) or "job-x")
    for bad in ("!!!", "tmp-x", "..."):
        at = open_page("train")
        at.text_input(key="fv_train_name").input(bad).run()
        at.button(key="fv_train_go").click().run()
        assert_clean(at)
        assert "no usable characters" in errors(at), bad
        assert launched == [] and "fv_train_job" not in at.session_state


def test_run_name_is_not_rendered_as_markdown(models_dir, tmp_path, monkeypatch):
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    monkeypatch.setenv("FAIRVIZ_MODELS", str(root))

    def fake_train(config, progress=None, cancel=None):
        run = make_fake_run(config.method, config.lambda_w, 0.03, 0.6)
        run.config = config
        return run

    monkeypatch.setattr(jobs, "_default_train", fake_train)
    at = open_page("train")
    at.text_input(key="fv_train_name").input("**bold** _it_").run()
    at.button(key="fv_train_go").click().run()
    _jobs.job_registry().wait(at.session_state["fv_train_job"], 20)
    at.run()
    assert_clean(at)
    heads = [m.value for m in at.markdown if "bold" in m.value]
    assert heads and all("\\*\\*bold\\*\\*" in h for h in heads), heads


def test_out_of_memory_on_the_audit_page_is_an_error_message(monkeypatch):
    def oom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(app_support, "read_uploaded_table", oom)
    at = _upload(open_page("audit"), "big.csv", b"score,group\n0.1,a\n0.2,b\n")
    assert_clean(at)
    assert "out of memory" in errors(at) and "python -m fairviz audit" in errors(at)
    # outside the places that expect bad input too (app.py catches it around every page)
    monkeypatch.setattr(_audit_data, "dp_curve_for", oom)
    at = open_page()
    at.switch_page("app_pages/audit.py").run()
    assert_clean(at)
    assert "out of memory" in errors(at)


def test_audit_page_keeps_na_as_a_group_and_says_how_many_rows_it_left_out():
    at = _upload(open_page("audit"), "regions.csv", NA_TABLE.encode())
    assert_clean(at)
    shown = texts(at)
    assert "NA: 3" in shown and "None: 1" in shown and "1 rows with unknown group excluded" in shown
    at.text_input(key="fv_audit_missing").input("NA, null").run()
    assert_clean(at)
    shown = texts(at)
    assert "NA: 3" not in shown and "5 rows with unknown group excluded" in shown


def test_audit_page_caps_groups_and_isolates_right_to_left_names():
    rng = np.random.default_rng(0)
    n = 6000
    df = pd.DataFrame({"score": rng.random(n), "evil": np.where(np.arange(n) % 2, "\u202eLTR", "x"),
                       "a": rng.integers(0, 15, n).astype(str), "b": rng.integers(0, 15, n).astype(str),
                       "id": np.arange(n) % 500})
    at = _upload(open_page("audit"), "many.csv", df.to_csv(index=False).encode())
    assert_clean(at)  # the first column, "evil", is audited first
    caps = " ".join(c.value for c in at.caption)
    assert "\u2068\u202eLTR\u2069" in caps
    at.multiselect(key="fv_audit_groups").set_value(["id"]).run()
    assert_clean(at)
    assert "500 distinct groups" in errors(at)
    at.multiselect(key="fv_audit_groups").set_value(["a", "b"]).run()
    assert_clean(at)
    assert any("more than 200" in w.value for w in at.warning)  # the 15 × 15 intersection
