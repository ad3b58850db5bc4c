"""Pages that do not train never import torch (it takes seconds and hundreds of MB on a cold
server): each is run with AppTest in a fresh interpreter, so other tests' imports do not count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from tests._app_runs import make_fake_models  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PAGES = ("home", "audit", "compare", "tradeoff", "representation", "monitor")

SCRIPT = textwrap.dedent("""
    import sys
    from streamlit.testing.v1 import AppTest

    page = sys.argv[1]
    at = AppTest.from_file("app.py", default_timeout=120)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = len(at.get("plotly_chart")) + len(at.metric) + len(at.get("dataframe"))
    print(page, "elements", shown, "torch", "torch" in sys.modules)
""")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of the page runs: a models folder of fake runs (made here: that imports torch)."""
    root = tmp_path_factory.mktemp("models")
    make_fake_models(root)
    return {**os.environ, "FAIRVIZ_MODELS": str(root), "PYTHONPATH": str(REPO)}


def _run(page: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, page], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("page", PAGES)
def test_page_that_does_not_train_never_imports_torch(page, env):
    out = _run(page, env)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1].split()
    assert last[0] == page and int(last[2]) > 0, out.stdout  # the page drew something
    assert last[-1] == "False", f"the {page} page imported torch"


def test_the_train_page_does_import_torch(env):
    """The check above can fail: the Train page, which trains, loads torch in the same harness."""
    out = _run("train", env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].split()[-1] == "True", out.stdout
