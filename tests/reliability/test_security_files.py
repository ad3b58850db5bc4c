"""Hostile files and folders: pickles that run code, paths outside the data root, overwrites and
cleanups that would delete other people's files, links in run folders, damaged run folders,
file modes, spreadsheet formulas, duplicate columns and right-to-left overrides.

Each test names the attack it replays; docs/RELIABILITY.md ("Security and robustness of the
server") lists what each one tried and what happens now.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import shutil
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from fairviz import app_support, atomic, theme
from fairviz import runs as R
from fairviz.cli import main
from fairviz.data.first_impressions import build_manifest
from fairviz.safety import csv_text, isolate_bidi, load_plain_pickle
from fairviz.tabular import read_table
from tests.reliability._helpers import REPO, SENTINEL, Marker, make_run, record_dangerous_events

ANNOTATION = {"interview": {"a.mp4": 0.5, "b.mp4": 0.7}, "openness": {"a.mp4": 0.1, "b.mp4": 0.2}}


# ---------------------------------------------------------------------------------------------
# 1. unpickling


def _fi_folder(root: Path, annotation=ANNOTATION) -> Path:
    """A First Impressions V2 folder: the annotation pickle, the demographics CSV, two clips."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotation_training.pkl").write_bytes(pickle.dumps(annotation, protocol=2))
    (root / "eth_gender_annotations_dev.csv").write_text(
        "VideoName;YouTubeID;Ethnicity;Gender\na.mp4;x;1;1\nb.mp4;y;2;2\n")
    (root / "clips").mkdir(exist_ok=True)
    for v in ("a.mp4", "b.mp4"):
        (root / "clips" / v).write_bytes(b"\0")
    return root


def test_first_impressions_pickle_that_runs_code_is_refused(tmp_path):
    hit = tmp_path / "pwned"
    root = _fi_folder(tmp_path / "fi", {"interview": Marker(hit)})
    with record_dangerous_events() as events, pytest.raises(ValueError, match="refusing to load"):
        build_manifest(root)
    assert not hit.exists() and not [e for e in events if e[0] != "pickle.find_class"]
    # the plain annotation pickle of the data set still reads (Python-2 style, protocol 2)
    root = _fi_folder(tmp_path / "ok")
    assert sorted(build_manifest(root)["id"]) == ["a.mp4", "b.mp4"]


def _pickle_calls(text: str) -> list[str]:
    """Every unpickling call in ``text``, except ``torch.load(..., weights_only=True)`` (torch's
    restricted unpickler: tensors and plain containers only, every other global refused)."""
    calls = re.findall(r"\b(?:pickle\.loads?|cPickle\.loads?|Unpickler|joblib\.load|dill\.loads?)\s*\(", text)
    return calls + [m.group(0) for m in re.finditer(r"\btorch\.load\s*\([^\n]*", text)
                    if "weights_only=True" not in m.group(0)]


def test_no_unpickling_without_refusal_of_globals_anywhere_in_the_package(tmp_path):
    """Grep fairviz/ for every way to unpickle; the only one left is `fairviz.safety`'s
    unpickler, which must refuse a hostile pickle without running it."""
    hits = {}
    for path in (REPO / "fairviz").rglob("*.py"):
        calls = _pickle_calls(path.read_text(encoding="utf-8"))
        if calls:
            hits[str(path.relative_to(REPO))] = calls
    assert set(hits) <= {"fairviz/safety.py"}, hits
    # np.load must never allow pickles either
    for path in (REPO / "fairviz").rglob("*.py"):
        for m in re.finditer(r"np\.load\(([^)]*)\)", path.read_text(encoding="utf-8")):
            assert "allow_pickle=False" in m.group(1), (path, m.group(0))
    hit = tmp_path / "pwned"
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
            load_plain_pickle(pickle.dumps({"x": [Marker(hit)]}, protocol=protocol))
    assert not hit.exists()
    value = {"a": [1, 2.5, None, True, "é", 10**30], ("t",): {"b": (1, 2)}}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert load_plain_pickle(pickle.dumps(value, protocol=protocol)) == value
    # a Python-2 pickle of str keys and values (SHORT_BINSTRING), read as latin1
    py2 = b"\x80\x02}q\x00U\x05a.mp4q\x01G?\xe0\x00\x00\x00\x00\x00\x00s."
    assert load_plain_pickle(py2, encoding="latin1") == {"a.mp4": 0.5}


# ---------------------------------------------------------------------------------------------
# 1. server paths typed by browser users


def test_server_path_sources_are_off_without_a_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("FAIRVIZ_DATA_ROOT", raising=False)
    hit = tmp_path / "pwned"
    root = _fi_folder(tmp_path / "shared-tmp", {"interview": Marker(hit)})
    (tmp_path / "m.csv").write_text("video,label,group\n")
    for kind, path in (("first_impressions", str(root)), ("manifest", str(tmp_path / "m.csv"))):
        with pytest.raises(ValueError, match="FAIRVIZ_DATA_ROOT"):
            app_support.resolve_data_source(kind, path, out_dir=tmp_path / "out")
    assert not hit.exists()


def test_user_paths_must_stay_under_the_data_root(tmp_path, monkeypatch):
    data = tmp_path / "srv" / "data"
    fi = _fi_folder(data / "fi")
    outside = _fi_folder(tmp_path / "private")
    (data / "out-link").symlink_to(outside, target_is_directory=True)
    (data / "fi" / "inner-link").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("FAIRVIZ_DATA_ROOT", str(data))
    out = tmp_path / "cache"
    for typed, err in [("../private", "'..' is not allowed"), ("fi/../../private", "'..' is not allowed"),
                       ("out-link", "symbolic link"), ("fi/inner-link", "symbolic link"),
                       ("nowhere", "not in the data folder"), (str(outside), "not in the data folder")]:
        with pytest.raises((ValueError, FileNotFoundError), match=re.escape(err)) as info:
            app_support.resolve_data_source("first_impressions", typed, out_dir=out)
        assert str(tmp_path) not in str(info.value), info.value  # no server paths in messages
    # a folder under the root works, typed with or without a leading slash
    for typed in ("fi", "/fi", "fi/"):
        csv = app_support.resolve_data_source("first_impressions", typed, out_dir=out)
        assert pd.read_csv(csv)["id"].tolist() == ["a.mp4", "b.mp4"]
    # an error inside the data set names files relative to the root
    (fi / "annotation_training.pkl").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError) as info:
        app_support.resolve_data_source("first_impressions", "fi", out_dir=out)
    assert "annotation_training.pkl" in str(info.value) and str(tmp_path) not in str(info.value)


def test_first_impressions_tree_is_walked_once(tmp_path):
    root = _fi_folder(tmp_path / "fi")
    for k in range(20):
        (root / f"d{k}").mkdir()
    scans = []

    def hook(event, args):
        if event == "os.scandir" and args and str(args[0]) == str(root):
            scans.append(args)
        if event == "os.listdir" and args and str(args[0]) == str(root):
            scans.append(args)

    sys.addaudithook(hook)  # cannot be removed; it only records scans of this test's folder
    build_manifest(root)
    assert len(scans) == 1, scans


def test_streamlit_config_serves_locally_without_watcher_or_table_export():
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["fileWatcherType"] == "none"
    assert cfg["client"]["disableDataExport"] is True
    readme = (REPO / "README.md").read_text()
    assert "127.0.0.1" in readme and "FAIRVIZ_DATA_ROOT" in readme and "fileWatcherType" in readme


# ---------------------------------------------------------------------------------------------
# 4. --overwrite replaces only a run folder


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path, monkeypatch):
    from fairviz import train as T  # noqa: PLC0415 - imports torch, which only this test needs

    user = tmp_path / "some" / "folder"
    user.mkdir(parents=True)
    (user / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="not a fairviz run folder"):
        R.save_run(make_run(name="folder"), user, overwrite=True)
    models = tmp_path / "models"
    R.save_run(make_run(name="a"), models / "a")
    with pytest.raises(ValueError, match="not a fairviz run folder"):
        R.save_run(make_run(name="models"), models, overwrite=True)

    def no_training(*a, **k):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(T, "train", no_training)
    for out in (f"{user}/.", str(models)):
        assert main(["train", "--out", out, "--overwrite", "--epochs", "1", "--no-progress"]) == 2
    assert (user / "thesis.tex").read_text() == "years of work" and (models / "a" / "config.json").is_file()
    # a run folder is still replaced
    R.save_run(make_run(seed=1, name="a"), models / "a", overwrite=True)
    assert R.load_run(models / "a").metrics["spdd"]["value"] == pytest.approx(1.1)


# ---------------------------------------------------------------------------------------------
# 5. cleanup of killed saves


def test_cleanup_removes_only_fairviz_temporaries(tmp_path):
    old = time.time() - 7 * 3600
    theirs = [tmp_path / ".tmp-userdata", tmp_path / ".notes.tmp", tmp_path / f"{atomic.TMP_PREFIX}nomarker.x"]
    theirs[0].mkdir()
    (theirs[0] / "data").write_text("keep")
    theirs[1].write_text("keep")
    theirs[2].mkdir()  # our prefix, but no marker inside: not provably ours
    ours_dir = tmp_path / f"{atomic.TMP_PREFIX}report.html.abcd"
    ours_dir.mkdir()
    (ours_dir / atomic.MARKER).write_bytes(b"")
    ours_file = tmp_path / f"{atomic.TMP_PREFIX}report.html.abcd.tmp"
    ours_file.write_text("partial")
    for p in theirs + [ours_dir, ours_file]:
        os.utime(p, (old, old))
    atomic.write_text(tmp_path / "report.html", "<html></html>")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {p.name for p in theirs} | {"report.html"}


# ---------------------------------------------------------------------------------------------
# 7 and 10. damaged run folders, links


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    return R.save_run(make_run(name="good"), tmp_path_factory.mktemp("good") / "good")


def _clone(good: Path, root: Path, name: str) -> Path:
    root.mkdir(exist_ok=True)
    return Path(shutil.copytree(good, root / name))


def _edit_json(path: Path, **changes) -> None:
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


DAMAGED = {
    "pcc-list": ("metrics.json", {"pcc": {"value": [1]}}),
    "pcc-text": ("metrics.json", {"pcc": "high"}),
    "n-boot-text": ("metrics.json", {"n_boot": "x"}),
    "info-number": ("config.json", {"info": 5}),
    "method-link": ("config.json", {"method": "[x](http://evil.example)"}),
    "alpha-text": ("config.json", {"alpha": "big"}),
}


def damaged_runs(good: Path, root: Path) -> list[str]:
    for name, (file, change) in DAMAGED.items():
        _edit_json(_clone(good, root, name) / file, **change)
    return list(DAMAGED)


def test_damaged_run_folders_are_skipped_when_listed_and_load_raises_valueerror(good_run, tmp_path):
    root = tmp_path / "models"
    names = damaged_runs(good_run, root)
    _clone(good_run, root, "fine")
    found = R.list_runs(root)
    assert [i.name for i in found] == ["fine"]
    assert sorted(p.name for p, _ in found.skipped) == sorted(names)
    for name in names:
        with pytest.raises(ValueError):
            R.load_run(root / name)


def test_links_are_refused_at_every_depth_without_being_read(good_run, tmp_path):
    secret = tmp_path / f"usr-{SENTINEL}"
    (secret / "lib").mkdir(parents=True)
    for k in range(50):
        (secret / "lib" / f"f{k}").write_text("x")
    root = tmp_path / "models"
    root.mkdir()
    (root / "x").symlink_to(secret, target_is_directory=True)
    inner = _clone(good_run, root, "inner")
    (inner / "sub").mkdir()
    (inner / "sub" / "x").symlink_to(secret / "lib" / "f0")
    deep = _clone(good_run, root, "deep")
    (deep / "a" / "b").mkdir(parents=True)
    (deep / "a" / "b" / "log").symlink_to(secret, target_is_directory=True)
    with record_dangerous_events() as events:
        found = R.list_runs(root)
    assert [i.name for i in found] == []
    reasons = dict((p.name, why) for p, why in found.skipped)
    assert set(reasons) == {"x", "inner", "deep"} and all("symbolic link" in r for r in reasons.values())
    assert "f0" not in reasons["x"] and not [e for e in events if e[0] == "open"], events
    for name in ("inner", "deep"):
        with pytest.raises(ValueError, match="symbolic link"):
            R.load_run(root / name)


# ---------------------------------------------------------------------------------------------
# 11. file modes follow the umask


def test_reports_and_run_folders_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run = R.save_run(make_run(name="shared"), tmp_path / "shared")
        report = atomic.write_text(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(old)
    assert run.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in run.iterdir())
    assert report.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------------------------------------
# 12 and 13. formulas, duplicate columns, bidi text


def test_fairviz_csv_downloads_neutralise_formulas():
    df = pd.DataFrame({"group": ["=HYPERLINK(\"http://evil\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok", "a=b"],
                       "score": [0.1, -0.5, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]})
    rows = list(csv.reader(io.StringIO(csv_text(df), newline="")))
    assert [r[0] for r in rows[1:7]] == ["'=HYPERLINK(\"http://evil\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx"]
    assert [r[0] for r in rows[7:]] == ["ok", "a=b"] and rows[2][1] == "-0.5"  # numbers stay numbers


def test_duplicate_column_names_are_refused_by_cli_and_app(tmp_path):
    data = b"score,score,group\n0.1,0.9,a\n0.2,0.8,b\n"
    (tmp_path / "dup.csv").write_bytes(data)
    with pytest.raises(ValueError, match="duplicate column name"):
        read_table(tmp_path / "dup.csv")
    with pytest.raises(ValueError, match="duplicate column name"):
        app_support.read_uploaded_table(data, "dup.csv")


def test_right_to_left_override_in_a_group_name_is_isolated():
    from app_pages._common import md  # noqa: PLC0415 - imports streamlit, which only this test needs

    evil = "\u202eevil"
    for shown in (theme.group_name(evil), isolate_bidi(evil)):
        assert shown == "\u2068\u202eevil\u2069"
    assert md(evil).startswith("\u2068") and md(evil).endswith("\u2069")
    assert theme.group_name("F") == "F" and isolate_bidi("plain") == "plain"
    # a stray PDI cannot close the isolate early; nested isolates are closed
    assert isolate_bidi("\u2069\u202ex") == "\u2068\u202ex\u2069"
    assert isolate_bidi("\u2067x") == "\u2068\u2067x\u2069\u2069"
    assert isolate_bidi("שלום") == "\u2068שלום\u2069"
