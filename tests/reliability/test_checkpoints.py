"""Hostile run folders: pickles, tampered safetensors, bad configs, missing / truncated / empty
files, symbolic links, and hostile run names.

Every case is a copy of one good run folder with one thing changed. `load_run` must refuse it with
a ValueError whose message names the problem, nothing in it may be unpickled or executed (an
audit hook watches `pickle.find_class`, `os.system`, `subprocess.Popen`, `exec*`, and a marker
file would appear if a malicious `__reduce__` ran), and `list_runs` must never raise: it skips the
folder with a reason, except for damage that only a full load can see (row contents of
predictions.csv, weight shapes vs the model config, history.json), which `load_run` refuses.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairviz import runs as R
from tests.reliability._helpers import SENTINEL, Marker, make_run, record_dangerous_events

# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good")
    return R.save_run(make_run(), root / "good-run")


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def clone(good: Path, root: Path, name: str = "case") -> Path:
    dst = root / "models" / name
    shutil.copytree(good, dst)
    return dst


def assert_refused(path: Path, marker: Path, *words: str, listed_ok: bool = False) -> str:
    """load_run raises ValueError naming `words`; nothing executed; list_runs skips (or lists) it."""
    with record_dangerous_events() as events:
        with pytest.raises(ValueError) as info:
            R.load_run(path)
        listing = R.list_runs(path.parent)  # must never raise
    msg = str(info.value)
    assert "\n" not in msg.strip(), msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    assert events == [], events
    assert not marker.exists(), "a pickled payload ran"
    names = [i.name for i in listing]
    skipped = {Path(p).name: why for p, why in listing.skipped}
    if not listed_ok:
        assert path.name not in names and path.name in skipped, (names, skipped)
        assert skipped[path.name]
    else:
        assert path.name in names or path.name in skipped
    return msg


# ---------------------------------------------------------------------------------------------
# the payload is real: unpickling it does create the marker (positive controls)


def test_payload_runs_when_unpickled(tmp_path, marker):
    with record_dangerous_events() as events:
        pickle.loads(pickle.dumps(Marker(marker)))
    assert marker.exists() and any(e == "pickle.find_class" for e, _ in events)
    marker.unlink()
    torch.save({"w": Marker(marker)}, tmp_path / "weights.pt")
    torch.load(tmp_path / "weights.pt", weights_only=False)
    assert marker.exists()


def test_good_run_loads_and_lists(good, tmp_path):
    path = clone(good, tmp_path)
    with record_dangerous_events() as events:
        run = R.load_run(path)
    assert events == [] and run.name == "rel-run"
    listing = R.list_runs(path.parent)
    assert [i.name for i in listing] == ["case"] and listing.skipped == []


# ---------------------------------------------------------------------------------------------
# pickle-bearing files


def _torch_save(marker):
    def f(p: Path):
        torch.save({"w": Marker(marker)}, p)
    return f


def _pickle(marker, protocol):
    def f(p: Path):
        p.write_bytes(pickle.dumps({"w": Marker(marker)}, protocol=protocol))
    return f


PICKLE_CASES = [
    # (id, file to write, writer, expected words)
    ("extra-weights.pt", "weights.pt", "torch", ["pickle", "weights.pt"]),
    ("weights-as-torch-zip", R.WEIGHTS_FILE, "torch", ["pickle", R.WEIGHTS_FILE]),
    ("nested-extra.pkl", "extra/state.pkl", 4, ["pickle", "state.pkl"]),
    ("extra.ckpt", "last.ckpt", 2, ["pickle", "last.ckpt"]),
    ("extra-no-suffix-p5", "blob", 5, ["pickle", "blob"]),
    ("predictions-as-pickle", R.PREDICTIONS_FILE, 4, ["pickle", R.PREDICTIONS_FILE]),
    ("metrics-as-pickle", R.METRICS_FILE, 3, ["pickle", R.METRICS_FILE]),
] + [(f"weights-as-pickle-p{p}", R.WEIGHTS_FILE, p, ["pickle", R.WEIGHTS_FILE]) for p in (2, 3, 4, 5)]


@pytest.mark.parametrize("case_id,fname,how,words", PICKLE_CASES, ids=[c[0] for c in PICKLE_CASES])
def test_pickle_bearing_file_is_refused_and_never_run(good, tmp_path, marker, case_id, fname, how, words):
    path = clone(good, tmp_path)
    target = path / fname
    target.parent.mkdir(parents=True, exist_ok=True)
    (_torch_save(marker) if how == "torch" else _pickle(marker, how))(target)
    assert_refused(path, marker, *words)


@pytest.mark.parametrize("protocol", [0, 1])
def test_text_protocol_pickle_as_weights_is_refused_by_the_parser(good, tmp_path, marker, protocol):
    # protocols 0/1 have no magic bytes; the safetensors parser rejects them without unpickling
    path = clone(good, tmp_path)
    _pickle(marker, protocol)(path / R.WEIGHTS_FILE)
    assert_refused(path, marker, R.WEIGHTS_FILE, "safetensors")


def test_numpy_object_array_is_refused(good, tmp_path, marker):
    path = clone(good, tmp_path)
    arr = np.empty(1, dtype=object)
    arr[0] = Marker(marker)
    np.save(path / "extra.npy", arr, allow_pickle=True)
    assert_refused(path, marker, "pickle", "extra.npy")


def test_unknown_extra_file_is_never_read(good, tmp_path, marker):
    # a protocol-0 pickle under a harmless name cannot be told from text; it is simply never
    # opened by load_run (which reads only the six documented files), so it cannot run
    path = clone(good, tmp_path)
    (path / "notes.txt").write_bytes(pickle.dumps(Marker(marker), protocol=0))
    with record_dangerous_events() as events:
        R.load_run(path)
    assert events == [] and not marker.exists()


# ---------------------------------------------------------------------------------------------
# tampered safetensors (weights and Z)


def _split(p: Path):
    b = p.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def _write(p: Path, header, data: bytes) -> None:
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(hb)) + hb + data)


def _first(h: dict) -> str:
    return sorted(k for k in h if k != "__metadata__")[0]


def _edit_entry(**changes):
    def f(p: Path):
        h, d = _split(p)
        h[_first(h)].update(changes)
        _write(p, h, d)
    return f


def _header_bytes(raw: bytes):
    def f(p: Path):
        _, d = _split(p)
        _write(p, raw, d)
    return f


SAFETENSORS_CASES = {
    "length-2^63": lambda p: p.write_bytes(struct.pack("<Q", 2 ** 63) + p.read_bytes()[8:]),
    "length-past-end": lambda p: p.write_bytes(struct.pack("<Q", p.stat().st_size * 4) + p.read_bytes()[8:]),
    "length-zero": lambda p: p.write_bytes(struct.pack("<Q", 0) + p.read_bytes()[8:]),
    "not-json": _header_bytes(b"{this is not json}"),
    "json-array": _header_bytes(b"[1, 2, 3]"),
    "json-nested-deep": _header_bytes(b"[" * 20000 + b"]" * 20000),
    "not-utf8": _header_bytes(b'{"\xff\xfe": 1}'),
    "offsets-past-end": _edit_entry(data_offsets=[0, 10 ** 9]),
    "offsets-reversed": _edit_entry(data_offsets=[8, 0]),
    "offsets-negative": _edit_entry(data_offsets=[-8, 4]),
    "offsets-2^64": _edit_entry(data_offsets=[0, 2 ** 64 + 5]),
    "dtype-unknown": _edit_entry(dtype="PYOBJ"),
    "shape-overflow": _edit_entry(shape=[2 ** 40, 2 ** 40]),
    "shape-negative": _edit_entry(shape=[-1]),
    "metadata-not-str": lambda p: _write(p, {**_split(p)[0], "__metadata__": {"a": [1]}}, _split(p)[1]),
    "truncated-half": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "truncated-last-byte": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "trailing-garbage": lambda p: p.write_bytes(p.read_bytes() + b"\0" * 64),
    "four-bytes": lambda p: p.write_bytes(p.read_bytes()[:4]),
    "empty": lambda p: p.write_bytes(b""),
    "random-bytes": lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)),
}


@pytest.mark.parametrize("fname", [R.WEIGHTS_FILE, R.Z_FILE])
@pytest.mark.parametrize("case_id", list(SAFETENSORS_CASES))
def test_tampered_safetensors_is_refused(good, tmp_path, marker, fname, case_id):
    path = clone(good, tmp_path)
    SAFETENSORS_CASES[case_id](path / fname)
    assert_refused(path, marker, fname)


def test_weights_that_do_not_match_the_config_are_refused(good, tmp_path, marker):
    from safetensors.torch import load_file, save_file

    path = clone(good, tmp_path)
    state = load_file(str(path / R.WEIGHTS_FILE))
    key = sorted(state)[0]
    state[key] = torch.zeros(*state[key].shape, 2)
    state["extra.weight"] = torch.zeros(3)
    save_file(state, str(path / R.WEIGHTS_FILE))
    assert_refused(path, marker, "do not match", key, "extra.weight", listed_ok=True)


# ---------------------------------------------------------------------------------------------
# config.json: bad JSON, bad fields, paths


def _config_edit(**changes):
    def f(p: Path):
        c = json.loads(p.read_text())
        for k, v in changes.items():
            section, _, key = k.partition("__")
            if key:
                c[section][key] = v
            else:
                c[section] = v
        p.write_text(json.dumps(c))
    return f


def _config_text(old: str, new: str):
    def f(p: Path):
        text = p.read_text()
        assert old in text
        p.write_text(text.replace(old, new, 1))
    return f


CONFIG_CASES = [
    # (id, edit, words, listed_ok)
    ("not-json", lambda p: p.write_text("{'method': 'ours'"), ["config.json", "JSON"], False),
    ("not-utf8", lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), ["config.json", "JSON"], False),
    ("json-array", lambda p: p.write_text("[1, 2]"), ["config.json", "object"], False),
    ("nested-100k-deep", lambda p: p.write_text("[" * 100_000 + "]" * 100_000), ["config.json", "nested"], False),
    ("60-MB-sparse", lambda p: os.truncate(p, 60 * 2 ** 20), ["config.json", "too large"], False),
    ("format-version-99", _config_edit(format_version=99), ["format_version"], False),
    ("format-version-missing", lambda p: p.write_text(
        json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "format_version"})),
     ["format_version"], False),
    ("no-model-section", lambda p: p.write_text(
        json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "model"})), ["model"], False),
    ("alpha-text", _config_edit(alpha="x"), ["alpha"], False),
    ("seed-1e400", _config_text('"seed": 0', '"seed": 1e400'), ["seed"], False),
    ("train-epochs-1e400", _config_text('"epochs": 12', '"epochs": 1e400'), ["config.json", "bad field"], True),
    ("train-unknown-key", _config_edit(train__evil="__import__('os')"), ["unknown train config keys"], True),
    ("train-method-unknown", _config_edit(train__method="rm -rf"), ["method"], True),
    ("model-unknown-key", _config_edit(model__evil=1), ["unknown model config keys"], True),
    ("model-hidden-text", _config_edit(model__video_hidden="x"), ["model config"], True),
    ("model-channels-int", _config_edit(model__video_channels=5), ["config.json", "bad field"], True),
    ("model-hidden-negative", _config_edit(model__video_hidden=-3), ["model config"], True),
    # would need 1.6 PB / 400 GB if the network were allocated: the shape check builds it on the
    # meta device, so this is a quick "do not match" and no memory is touched
    ("model-hidden-1e7", _config_edit(model__video_hidden=10 ** 7), ["do not match"], True),
    ("model-text-1e6", _config_edit(model__text_dim=10 ** 6, model__text_hidden=10 ** 5), ["do not match"], True),
    ("name-traversal", _config_edit(name="../../etc/cron.d/x"), ["name", "../../etc/cron.d/x"], True),
    ("name-absolute", _config_edit(name="/etc/passwd"), ["name", "/etc/passwd"], True),
    ("name-dotdot", _config_edit(name=".."), ["name"], True),
    ("name-not-str", _config_edit(name=["a"]), ["name"], True),
]


@pytest.mark.parametrize("case_id,edit,words,listed_ok", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_refused(good, tmp_path, marker, case_id, edit, words, listed_ok):
    path = clone(good, tmp_path)
    edit(path / R.CONFIG_FILE)
    assert_refused(path, marker, *words, listed_ok=listed_ok)


def test_config_paths_are_never_followed(good, tmp_path):
    """`train.data` and `train.text_model` say what a run was trained on; loading never opens them."""
    path = clone(good, tmp_path)
    outside = tmp_path / f"outside-{SENTINEL}"
    outside.mkdir()
    (outside / "manifest.csv").write_text("video,label,group\n")
    _config_edit(train__data=str(outside / "manifest.csv"),
                 train__text_model=f"../../../../{SENTINEL}/model")(path / R.CONFIG_FILE)
    with record_dangerous_events() as events:
        run = R.load_run(path)
        R.list_runs(path.parent)
    assert events == [], events  # no open() of either path, no unpickling
    assert run.config.data.endswith("manifest.csv")


# ---------------------------------------------------------------------------------------------
# missing, empty, truncated files; wrong kinds of files


@pytest.mark.parametrize("fname", R.REQUIRED_FILES)
def test_missing_file_is_named(good, tmp_path, marker, fname):
    path = clone(good, tmp_path)
    (path / fname).unlink()
    assert_refused(path, marker, "missing", fname)


@pytest.mark.parametrize("fname", R.REQUIRED_FILES)
def test_file_replaced_by_a_folder_is_missing(good, tmp_path, marker, fname):
    path = clone(good, tmp_path)
    (path / fname).unlink()
    (path / fname).mkdir()
    assert_refused(path, marker, "missing", fname)


# list_runs reads config, metrics and the safetensors headers; predictions/history only load_run
_FULL_LOAD_ONLY = {R.PREDICTIONS_FILE, R.HISTORY_FILE}


@pytest.mark.parametrize("fname", R.REQUIRED_FILES)
@pytest.mark.parametrize("how", ["empty", "half", "all-but-last-byte"])
def test_empty_or_truncated_file_is_refused(good, tmp_path, marker, fname, how):
    path = clone(good, tmp_path)
    p = path / fname
    data = p.read_bytes()
    # the last byte is a newline that neither JSON nor CSV needs: cut the last byte of content
    cut = {"empty": 0, "half": len(data) // 2, "all-but-last-byte": len(data.rstrip()) - 1}[how]
    p.write_bytes(data[:cut])
    assert_refused(path, marker, fname, listed_ok=fname in _FULL_LOAD_ONLY)


def _set_field(text: str, row: int, col: int, value: str) -> str:
    lines = text.splitlines()
    cells = lines[row + 1].split(",")
    cells[col] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


PREDICTION_CASES = {
    "garbage-bytes": (lambda t: None, ["predictions.csv"]),
    "group-30-digits": (lambda t: _set_field(t, 0, 2, "9" * 30), ["predictions.csv"]),
    "group-text": (lambda t: _set_field(t, 0, 2, "F"), ["predictions.csv"]),
    "score-nan": (lambda t: _set_field(t, 0, 0, "nan"), ["predictions.csv", "scores"]),
    "score-2": (lambda t: _set_field(t, 3, 0, "2.0"), ["predictions.csv", "scores"]),
    "unknown-split": (lambda t: t.replace(",val", ",evil", 1), ["split"]),
    "no-test-rows": (lambda t: t.replace(",test", ",val"), ["test rows"]),
    "extra-column": (lambda t: "\n".join(line + ",x" for line in t.splitlines()) + "\n", ["columns"]),
    "one-row-less": (lambda t: "\n".join(t.splitlines()[:-1]) + "\n", ["shape"]),
}


@pytest.mark.parametrize("case_id", list(PREDICTION_CASES))
def test_bad_predictions_are_refused(good, tmp_path, marker, case_id):
    path = clone(good, tmp_path)
    p = path / R.PREDICTIONS_FILE
    edit, words = PREDICTION_CASES[case_id]
    if case_id == "garbage-bytes":
        p.write_bytes(np.random.default_rng(2).bytes(3000))
    else:
        p.write_text(edit(p.read_text()))
    assert_refused(path, marker, *words, listed_ok=True)


@pytest.mark.parametrize("content", ["[NaN]", "[" * 50_000 + "]" * 50_000, '{"a": 1}'])
def test_bad_history_is_refused(good, tmp_path, marker, content):
    path = clone(good, tmp_path)
    (path / R.HISTORY_FILE).write_text(content)
    if content == "[NaN]":  # valid JSON for Python; a list, so the run loads
        assert R.load_run(path).history != []
        return
    assert_refused(path, marker, R.HISTORY_FILE if content.startswith("[") else "history", listed_ok=True)


@pytest.mark.parametrize("target", ["/etc/passwd", "other-run-weights", "dir:/", "loop"])
def test_symbolic_links_are_refused(good, tmp_path, marker, target):
    path = clone(good, tmp_path)
    if target == "dir:/":
        (path / "sub").symlink_to("/")
    elif target == "loop":
        (path / "loop").symlink_to(path / "loop")
    else:
        (path / R.WEIGHTS_FILE).unlink()
        (path / R.WEIGHTS_FILE).symlink_to("/etc/passwd" if target == "/etc/passwd" else good / R.WEIGHTS_FILE)
    assert_refused(path, marker, "symbolic link")


def test_fifo_in_the_folder_does_not_hang(good, tmp_path):
    path = clone(good, tmp_path)
    os.mkfifo(path / "pipe")  # opening it for reading would block forever
    R.load_run(path)
    assert [i.name for i in R.list_runs(path.parent)] == ["case"]


def test_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        R.load_run(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a run folder"):
        R.load_run(tmp_path / "file")


def test_list_runs_with_every_hostile_folder_at_once(good, tmp_path, marker):
    """One models folder holding many broken runs, a staging folder and one good run."""
    root = tmp_path / "models"
    shutil.copytree(good, root / "ok")
    for i, (_, edit, _, _) in enumerate(CONFIG_CASES[:8]):
        edit(clone(good, tmp_path, f"cfg-{i}") / R.CONFIG_FILE)
    for i, case_id in enumerate(list(SAFETENSORS_CASES)[:8]):
        SAFETENSORS_CASES[case_id](clone(good, tmp_path, f"st-{i}") / R.WEIGHTS_FILE)
    _torch_save(marker)(clone(good, tmp_path, "pickled") / "weights.pt")
    shutil.copytree(good, root / ".tmp-ok.abc123")  # a save in progress
    (root / ".tmp-ok.abc123" / R.WEIGHTS_FILE).write_bytes(b"partial")
    (root / "stray-file.txt").write_text("not a folder")
    with record_dangerous_events() as events:
        listing = R.list_runs(root)
    assert [i.name for i in listing] == ["ok"]
    assert len(listing.skipped) == 17 and all(why for _, why in listing.skipped)
    assert events == [] and not marker.exists()


# ---------------------------------------------------------------------------------------------
# run names from users

NAME_CASES = {
    "../../etc/x": "etc-x",
    "/etc/passwd": "etc-passwd",
    "..\\..\\windows\\system32": "windows-system32",
    "a/../../b": "a-.-.-b",
    "~/.ssh/authorized_keys": "ssh-authorized_keys",
    "run\x00name": "run-name",
    "  ours a4  ": "ours-a4",
    "café-α": "caf",
    "x" * 10_000: "x" * 100,
    "$(touch PWNED)": "touch-PWNED",
    "-rf": "rf",
}


@pytest.mark.parametrize("raw", list(NAME_CASES), ids=range(len(NAME_CASES)))
def test_sanitize_examples(raw):
    assert R.sanitize_run_name(raw) == NAME_CASES[raw]


@pytest.mark.parametrize("raw", ["", " ", ".", "..", "...", "/", "../..", "日本語", "🙂", "tmp-x", ".tmp-x", "\x00", "-"])
def test_sanitize_refuses_names_with_nothing_left(raw):
    with pytest.raises(ValueError, match="no usable characters"):
        R.sanitize_run_name(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_name_stays_inside_the_models_folder(tmp_path, raw):
    root = (tmp_path / "models").resolve()
    try:
        name = R.sanitize_run_name(raw)
    except ValueError as err:
        assert "run name" in str(err)
        return
    assert 1 <= len(name) <= R.MAX_NAME_LENGTH
    assert name not in (".", "..") and not name.startswith((".", "-", "tmp-"))
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert (root / name).resolve().parent == root
    assert R.sanitize_run_name(name) == name  # idempotent
    unique = R.unique_run_name(root, raw)
    assert (root / unique).resolve().parent == root


def test_save_with_a_hostile_run_name_stays_inside_models(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv("FAIRVIZ_MODELS", str(root))
    for raw in ["../../escape", "/var/escape", "..\\escape"]:
        out = R.save_run(make_run(name=raw))
        assert out.parent == root and out.name.endswith("escape"), out
        shutil.rmtree(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    with pytest.raises(ValueError, match="not allowed"):
        R.save_run(make_run(), root / "bad name")
