"""Uploads: random and hostile score tables through the CLI's and the app's audit paths.

Property (hypothesis, random columns / types / encodings / formats / NaN / inf / corruptions):
each path gives either a ValueError with a one-line message or an audit whose numbers equal a
direct computation (SPDD integrated exactly from the selection-rate curves, PCC from numpy, group
counts); a table that is valid by construction must give the audit. Plus named edge cases and
one file of 10⁶ rows (CSV and Parquet).
"""

from __future__ import annotations

import collections
import io
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability._tables import app_path, brute_spdd, cases, cli_path, close, encode

OUTCOMES: collections.Counter = collections.Counter()
_DIR = Path(tempfile.mkdtemp(prefix="fairviz-upload-fuzz-"))

FUZZ = settings(max_examples=int(os.environ.get("FAIRVIZ_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)



@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    """Print how the fuzzed cases ended (run with -s to see it; docs/RELIABILITY.md quotes it)."""
    yield
    print(f"\n{__name__}: " + ", ".join(f"{k}: {v}" for k, v in sorted(OUTCOMES.items(), key=str)))


def _write(data: bytes, filename: str) -> Path:
    d = _DIR / uuid.uuid4().hex[:10]
    d.mkdir()
    p = d / filename
    p.write_bytes(data)
    return p


@FUZZ
@given(case=cases())
def test_fuzzed_tables_give_a_clear_error_or_a_correct_audit(case):
    data = encode(case)
    path = _write(data, case.filename)
    cli = cli_path(path, case.score, case.group, case.label)
    app = app_path(data, case.filename, case.score, case.group, case.label)
    OUTCOMES[("cli", cli[0], case.clean)] += 1
    OUTCOMES[("app", app[0], case.clean)] += 1
    if case.clean:
        assert cli[0] == "ok", (cli, case.meta)
        assert app[0] == "ok", (app, case.meta)
        want = case.df[case.score].astype(np.float64).to_numpy()
        np.testing.assert_array_equal(cli[1]["x"], want)  # parsed exactly
        np.testing.assert_array_equal(app[1]["x"], want)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(["csv", "parquet", "tsv", "csv.gz"]))
def test_arbitrary_bytes(data, suffix):
    path = _write(data, f"blob.{suffix}")
    cli_path(path, "score", "group", None)
    if suffix in ("csv", "parquet"):
        app_path(data, f"blob.{suffix}", "score", "group", None)


# ---------------------------------------------------------------------------------------------
# named cases


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


NAMED = {
    "empty-file.csv": (b"", ["empty"]),
    "empty-file.parquet": (b"", ["empty", "parquet"]),
    "blank-lines.csv": (b"\n\n  \n", ["empty", "columns"]),
    "header-only.csv": (b"score,group\n", ["no rows"]),
    "single-group.csv": (b"score,group\n0.1,a\n0.9,a\n", ["group"]),
    "single-row.csv": (b"score,group\n0.1,a\n", ["group"]),
    "latin-1.csv": ("score,group\n0.1,é\n0.9,ü\n".encode("latin-1"), ["utf-8"]),
    "utf-16.csv": ("score,group\n0.1,a\n0.9,b\n".encode("utf-16"), ["utf-8"]),
    "garbage.parquet": (os.urandom(2048), ["parquet"]),
    "csv-named.parquet": (b"score,group\n0.1,a\n0.9,b\n", ["parquet"]),
    "parquet-named.csv": (_parquet(pd.DataFrame({"score": [0.1, 0.9], "group": ["a", "b"]})), ["csv"]),
    "nan-score.csv": (b"score,group\nnan,a\n0.9,b\n", ["score", "row 0"]),
    "inf-score.csv": (b"score,group\n0.1,a\ninf,b\n", ["score", "row 1"]),
    "1e400-score.csv": (b"score,group\n0.1,a\n1e400,b\n", ["score", "row 1"]),
    "negative-score.csv": (b"score,group\n-0.1,a\n0.9,b\n", ["score", "[0, 1]"]),
    "text-score.csv": (b"score,group\nhigh,a\n0.9,b\n", ["score", "high"]),
    "nul-bytes.csv": (b"score,group\n0.1,a\x00\x00\n0.9,b\n", None),
    "unterminated-quote.csv": (b'score,group\n0.1,"a\n0.9,b\n', ["csv"]),
    "ragged.csv": (b"score,group\n0.1,a,x,y\n0.9\n", ["score"]),
    "no-group-column.csv": (b"score,sex\n0.1,a\n0.9,b\n", ["group", "sex"]),
    "semicolons.csv": (b"score;group\n0.1;a\n0.9;b\n", ["score"]),
    "list-groups.parquet": (_parquet(pd.DataFrame({"score": [0.1, 0.9], "group": [[1], [2]]})), ["group"]),
    "dict-groups.parquet": (_parquet(pd.DataFrame({"score": [0.1, 0.9], "group": [{"a": 1}, {"a": 2}]})), ["group"]),
    "date-scores.parquet": (_parquet(pd.DataFrame({"score": pd.to_datetime(["2020-01-01", "2021-01-01"]),
                                                   "group": ["a", "b"]})), ["score"]),
    "null-scores.parquet": (_parquet(pd.DataFrame({"score": [0.1, None], "group": ["a", "b"]})), ["score"]),
    "bytes-groups.parquet": (_parquet(pd.DataFrame({"score": [0.1, 0.9], "group": [b"a", b"\xff"]})), None),
    "nullable-int-groups.parquet": (_parquet(pd.DataFrame({"score": [0.1, 0.9, 0.5],
                                                          "group": pd.array([1, 2, None], dtype="Int64")})), None),
    "categorical-groups.parquet": (_parquet(pd.DataFrame({"score": [0.1, 0.9], "group": pd.Categorical(["a", "b"])})),
                                   None),
    "gzip-named.csv": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00garbage", ["utf-8"]),
    "zip-named.csv": (b"PK\x03\x04" + os.urandom(200), None),
    "5000-columns.csv": (",".join([f"c{i}" for i in range(5000)] + ["score", "group"]).encode() + b"\n"
                         + (",".join(["1"] * 5000) + ",0.1,a\n").encode()
                         + (",".join(["1"] * 5000) + ",0.9,b\n").encode(), "ok"),
    "bom.csv": ("score,group\n0.1,a\n0.9,b\n".encode("utf-8-sig"), "ok"),
    "crlf.csv": (b"score,group\r\n0.1,a\r\n0.9,b\r\n", "ok"),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_edge_cases(name):
    data, words = NAMED[name]
    path = _write(data, name)
    for who, out in (("cli", cli_path(path, "score", "group", None)), ("app", app_path(data, name, "score", "group", None))):
        if words == "ok":
            assert out[0] == "ok", (who, out)
            assert close(out[1]["x"].sum(), 1.0)
        elif words is not None:
            if out[0] == "ok":
                # the app reads group-less/odd files the CLI refuses (or vice versa) only if correct
                continue
            msg = out[1].lower()
            assert any(w.lower() in msg for w in words), (who, msg, words)


# ---------------------------------------------------------------------------------------------
# one million rows


@pytest.fixture(scope="module")
def million(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 1_000_000
    g = rng.choice(np.array(["F", "M", "X"]), n, p=[0.48, 0.48, 0.04])
    y = rng.random(n)
    x = np.clip(0.25 + 0.5 * y + 0.08 * (g == "M") + rng.normal(0, 0.05, n), 0, 1).round(6)
    df = pd.DataFrame({"score": x, "group": g, "label": y.round(6)})
    d = tmp_path_factory.mktemp("million")
    df.to_csv(d / "scores.csv", index=False)
    df.to_parquet(d / "scores.parquet", index=False)
    return d, df


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_one_million_rows(million, fmt):
    d, df = million
    path = d / f"scores.{fmt}"
    expected = brute_spdd(df["score"].to_numpy(), df["group"].to_numpy())
    kind, out = cli_path(path, "score", "group", "label", n_boot=0)
    assert kind == "ok", out
    assert out["result"].n == 1_000_000 and close(out["result"].spdd.value, expected)
    kind, out = app_path(path.read_bytes(), path.name, "score", "group", "label", n_boot=0)
    assert kind == "ok", out
    assert out["view"].n == 1_000_000 and close(out["view"].spdd_max_min, expected)


# ---------------------------------------------------------------------------------------------
# every Arrow type a Parquet upload can carry, as the score and as the group column


def _arrow_columns():
    return {
        "decimal": pa.array([1, 2, 1], pa.decimal128(10, 2)),
        "duration": pa.array([1, 2, 1], pa.duration("s")),
        "map": pa.array([[("a", 1)], [("b", 2)], [("a", 1)]], pa.map_(pa.string(), pa.int64())),
        "struct": pa.array([{"x": 1}, {"x": 2}, {"x": 1}]),
        "list": pa.array([["a"], ["b"], ["a"]]),
        "binary": pa.array([b"a", b"\xff", b"a"]),
        "fixed-binary": pa.array([b"ab", b"cd", b"ab"], pa.binary(2)),
        "large-string": pa.array(["a", "b", "a"], pa.large_string()),
        "dictionary": pa.array(["a", "b", "a"]).dictionary_encode(),
        "date": pa.array([1, 2, 1], pa.date32()),
        "time": pa.array([1, 2, 1], pa.time32("s")),
        "timestamp-tz": pa.array([1, 2, 1], pa.timestamp("s", tz="UTC")),
        "null": pa.nulls(3),
        "bool": pa.array([True, False, True]),
        "uint64-max": pa.array([2 ** 64 - 1, 0, 1], pa.uint64()),
        "float16": pa.array(np.array([0.0, 1.0, 0.5], dtype=np.float16), pa.float16()),
    }


@pytest.mark.parametrize("role", ["score", "group"])
@pytest.mark.parametrize("kind", list(_arrow_columns()))
def test_parquet_arrow_types(kind, role):
    col = _arrow_columns()[kind]
    other = pa.array([0.1, 0.9, 0.5]) if role == "group" else pa.array(["a", "b", "a"])
    table = pa.table({"score": col, "group": other} if role == "score" else {"score": other, "group": col})
    buf = io.BytesIO()
    try:
        pq.write_table(table, buf)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        pytest.skip(f"pyarrow cannot write {kind} to Parquet")
    data = buf.getvalue()
    path = _write(data, f"{kind}.parquet")
    cli_path(path, "score", "group", None)  # a correct audit or a ValueError; checked inside
    app_path(data, path.name, "score", "group", None)
