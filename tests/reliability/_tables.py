"""Random score tables (hypothesis strategies), the three upload paths, and direct computations
to check their numbers against.

Paths, all given the same bytes:
- ``cli``: `fairviz.tabular.read_table` + `select_columns` + `fairviz.metrics.audit` (what
  ``python -m fairviz audit`` runs);
- ``app``: `fairviz.app_support.read_uploaded_table` + `audit_columns` +
  `fairviz.groups.audit_attributes` (the Audit page's upload path), then for the attribute on
  screen `metrics.audit` with resamples, `metrics.dp_curve` and the permutation test, as the
  page does.
Each returns ("ok", details) or ("ValueError", message); any other exception propagates.
"""

from __future__ import annotations

import gzip
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from fairviz.groups import MISSING_VALUES

# ---------------------------------------------------------------------------------------------
# direct computations


def brute_spdd(x, g) -> float:
    """∫₀¹ (max_g − min_g) P(x > τ | g) dτ, integrated exactly over the piecewise-constant curve."""
    x = np.asarray(x, dtype=np.float64)
    codes, _ = pd.factorize(pd.Series(np.asarray(g, dtype=object)), sort=False)
    t = np.unique(np.concatenate([[0.0, 1.0], x]))
    rates = []
    for k in range(codes.max() + 1):
        xs = np.sort(x[codes == k])
        rates.append(1.0 - np.searchsorted(xs, t, side="right") / len(xs))
    rates = np.array(rates)
    dp = rates.max(axis=0) - rates.min(axis=0)
    return float(np.sum(np.diff(t) * dp[:-1]))


def brute_pcc(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    # Pearson's r is scale-free; rescaling to a unit range keeps np.corrcoef from underflowing
    # on subnormal spreads (a column of 0 and 5e-324 is not constant).
    return float(np.corrcoef((x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y))[0, 1])


def is_missing_group(v) -> bool:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return True
    return isinstance(v, str) and v.strip().lower() in MISSING_VALUES


def close(a, b, tol=1e-9) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= tol * max(1.0, abs(b))


# ---------------------------------------------------------------------------------------------
# the paths


def one_line_error(err: BaseException) -> str:
    msg = str(err)
    assert msg.strip(), f"{type(err).__name__} without a message"
    assert "Traceback" not in msg
    return msg


def cli_path(path: Path, score: str, group: str, label: str | None, n_boot: int = 20):
    from fairviz import metrics
    from fairviz.tabular import read_table, select_columns

    try:
        df = read_table(path)
        x, g, y = select_columns(df, score, group, label)
        res = metrics.audit(x, g, y, n_boot=n_boot, random_state=0)
    except ValueError as err:
        return "ValueError", one_line_error(err)
    # the numbers, against direct computations on what was selected
    assert x.dtype == np.float64 and np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1
    assert len(x) == len(g) == len(df) == res.n
    counts = Counter(pd.Series(np.asarray(g, dtype=object)).tolist())
    assert sorted(res.group_counts.values()) == sorted(counts.values())
    assert close(res.spdd.value, brute_spdd(x, g)), (res.spdd.value, brute_spdd(x, g))
    if y is not None:
        assert close(res.pcc.value, brute_pcc(x, y)) or (math.isnan(res.pcc.value) and math.isnan(brute_pcc(x, y)))
        assert res.speo is not None
    else:
        assert res.speo is None and res.pcc is None
    return "ok", {"x": x, "g": g, "y": y, "result": res}


def app_path(data: bytes, filename: str, score: str, group: str, label: str | None, n_boot: int = 20):
    from fairviz import app_support, metrics
    from fairviz.groups import audit_attributes, prepare_groups
    from fairviz.significance import permutation_test

    try:
        df = app_support.read_uploaded_table(data, filename)
        x, attrs, y = app_support.audit_columns(df, score, [group], label)
        multi = audit_attributes(x, attrs, y, n_boot=0, random_state=0)
        view = multi.results[str(group)]
        col = prepare_groups(attrs, len(x), intersections=True)[str(group)]
        xv, gv = x[col.known], col.values(known_only=True)
        yv = None if y is None else y[col.known]
        boot = metrics.audit(xv, gv, yv, n_boot=n_boot, random_state=0)
        curve = metrics.dp_curve(xv, gv)
        perm = permutation_test(xv, gv, metric="spdd", n_perm=20, random_state=0)
    except ValueError as err:
        return "ValueError", one_line_error(err)
    values = list(attrs[str(group)])
    known = np.array([not is_missing_group(v) for v in values], dtype=bool)
    assert view.n == int(known.sum()) and view.n_missing == int((~known).sum())
    assert np.array_equal(col.known, known)
    expected = brute_spdd(x[known], np.asarray(values, dtype=object)[known])
    assert close(view.spdd_max_min, expected), (view.spdd_max_min, expected)
    assert close(boot.spdd.value, expected) and close(float(np.sum(np.diff(curve.thresholds) * curve.values)), expected)
    assert 0.0 <= perm.p_value <= 1.0
    return "ok", {"x": x, "view": view}


# ---------------------------------------------------------------------------------------------
# random tables

SCORE_KINDS = ["unit", "unit_ties", "zero_one", "bool", "ints", "out_of_range", "nan_some", "inf_some",
               "text_numbers", "garbage_text", "mixed", "empty_strings", "tiny", "constant"]
GROUP_KINDS = ["int2", "int_k", "str", "unicode", "single", "float", "nan_some", "bool", "missing_tokens",
               "all_missing", "long_text", "numeric_text", "one_per_row"]
_GOOD_SCORES = ["unit", "unit", "unit_ties", "zero_one", "tiny", "constant", "bool"]
_GOOD_GROUPS = ["int2", "int_k", "str", "unicode", "float", "bool", "long_text", "one_per_row"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-32"]
FORMATS = ["csv", "csv", "csv", "parquet", "parquet", "tsv", "csv.gz"]
CORRUPTIONS = ["none"] * 6 + ["truncate", "flip_bytes", "prepend_garbage", "random_bytes", "empty", "header_only"]

_unit = st.floats(0.0, 1.0, allow_nan=False)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@dataclass
class Case:
    df: pd.DataFrame
    score: str
    group: str
    label: str | None
    fmt: str
    encoding: str
    corruption: str
    clean: bool  # valid by construction: both paths must give a correct audit
    meta: dict = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return f"upload.{self.fmt}"


def _scores(draw, kind: str, n: int) -> list:
    if kind == "unit":
        return draw(st.lists(_unit, min_size=n, max_size=n))
    if kind == "unit_ties":
        return draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=n, max_size=n))
    if kind == "zero_one":
        return draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    if kind == "bool":
        return draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if kind == "ints":
        return draw(st.lists(st.integers(-5, 100), min_size=n, max_size=n))
    if kind == "out_of_range":
        return draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n))
    if kind == "nan_some":
        return draw(st.lists(st.one_of(_unit, st.just(float("nan")), st.none()), min_size=n, max_size=n))
    if kind == "inf_some":
        return draw(st.lists(st.one_of(_unit, st.sampled_from([float("inf"), -float("inf")])), min_size=n, max_size=n))
    if kind == "text_numbers":
        return [repr(v) for v in draw(st.lists(_unit, min_size=n, max_size=n))]
    if kind == "garbage_text":
        return draw(st.lists(_text, min_size=n, max_size=n))
    if kind == "mixed":
        return draw(st.lists(st.one_of(_unit, _text, st.integers(-3, 3), st.none()), min_size=n, max_size=n))
    if kind == "empty_strings":
        return [""] * n
    if kind == "tiny":
        return draw(st.lists(st.sampled_from([0.0, 5e-324, 1e-300, 1.0 - 2 ** -53, 1.0]), min_size=n, max_size=n))
    if kind == "constant":
        return [0.5] * n
    raise AssertionError(kind)


def _groups(draw, kind: str, n: int) -> list:
    if kind == "int2":
        return draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    if kind == "int_k":
        return draw(st.lists(st.integers(-3, 6), min_size=n, max_size=n))
    if kind == "str":
        return draw(st.lists(st.sampled_from(["F", "M", "X"]), min_size=n, max_size=n))
    if kind == "unicode":
        return draw(st.lists(st.sampled_from(["女", "männlich", "🙂", "a,b", 'q"uote', "ĳ"]), min_size=n, max_size=n))
    if kind == "single":
        return ["only"] * n
    if kind == "float":
        return draw(st.lists(st.sampled_from([0.5, 1.5, 2.25]), min_size=n, max_size=n))
    if kind == "nan_some":
        return draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n))
    if kind == "bool":
        return draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if kind == "missing_tokens":
        return draw(st.lists(st.sampled_from(["a", "b", "unknown", " Unknown ", "n/a", "none"]), min_size=n, max_size=n))
    if kind == "all_missing":
        return ["unknown"] * n
    if kind == "long_text":
        return draw(st.lists(st.sampled_from(["x" * 300, "y" * 300]), min_size=n, max_size=n))
    if kind == "numeric_text":
        return draw(st.lists(st.sampled_from(["001", "1", "1.0"]), min_size=n, max_size=n))
    if kind == "one_per_row":
        return [f"g{i}" for i in range(n)]
    raise AssertionError(kind)


@st.composite
def cases(draw) -> Case:
    # half the cases are well-formed tables (random sizes, values, group labels, formats), so
    # the audits' numbers get checked often; the other half draws every kind of damage
    hostile = draw(st.booleans())
    n = draw(st.integers(0, 40) if hostile else st.integers(2, 60))
    score_kind = draw(st.sampled_from(SCORE_KINDS if hostile else _GOOD_SCORES))
    group_kind = draw(st.sampled_from(GROUP_KINDS if hostile else _GOOD_GROUPS))
    label_kind = draw(st.sampled_from([None, None, "unit", "zero_one", "nan_some", "out_of_range", "garbage_text"]
                                      if hostile else [None, "unit", "zero_one"]))
    cols = {"score": _scores(draw, score_kind, n), "group": _groups(draw, group_kind, n)}
    if label_kind:
        cols["label"] = _scores(draw, label_kind, n)
    for i in range(draw(st.integers(0, 3))):  # unrelated columns
        cols[f"extra{i}_" + draw(st.text("abc ,\"\n;", max_size=4))] = _scores(draw, draw(st.sampled_from(SCORE_KINDS)), n)
    df = pd.DataFrame(cols)
    order = draw(st.permutations(list(df.columns)))
    df = df[order]
    fmt = draw(st.sampled_from(FORMATS if hostile else ["csv", "parquet"]))
    encoding = draw(st.sampled_from(ENCODINGS if hostile else ["utf-8", "utf-8-sig"])) if fmt != "parquet" else "binary"
    corruption = draw(st.sampled_from(CORRUPTIONS)) if hostile else "none"
    # pick the columns the user names: usually the right ones, sometimes a missing / wrong one
    naming = draw(st.sampled_from(["right"] * 8 + ["missing", "swapped", "same"])) if hostile else "right"
    score, group, label = "score", "group", ("label" if label_kind else None)
    if naming == "missing":
        score = draw(st.sampled_from(["Score", "nope", "", "score "]))
    elif naming == "swapped":
        score, group = group, score
    elif naming == "same":
        group = score
    clean = (
        n >= 2
        and score_kind in _GOOD_SCORES
        and group_kind in _GOOD_GROUPS
        and len(set(map(str, cols["group"]))) >= 2
        and label_kind in (None, "unit", "zero_one")
        and encoding in ("utf-8", "utf-8-sig", "binary")
        and fmt in ("csv", "parquet")
        and corruption == "none"
        and naming == "right"
    )
    meta = {"hostile": hostile, "score_kind": score_kind, "group_kind": group_kind, "label_kind": label_kind, "naming": naming}
    c = Case(df, score, group, label, fmt, encoding, corruption, clean, meta)
    c.meta["seed"] = draw(st.integers(0, 2 ** 32 - 1))
    return c


def encode(case: Case) -> bytes:
    """The file's bytes: the table written in the case's format/encoding, then corrupted."""
    df = case.df
    if case.fmt == "parquet":
        buf = io.BytesIO()
        try:
            df.to_parquet(buf, index=False)
            data = buf.getvalue()
        except Exception:  # noqa: BLE001 - pyarrow cannot type a mixed column: send a CSV instead
            data = df.to_csv(index=False).encode("utf-8")
            case.clean = False
    else:
        sep = "\t" if case.fmt == "tsv" else ","
        try:
            # "\r\n": the csv module then quotes fields holding a bare "\r" or "\n" (with "\n" alone a
            # bare "\r" in a text column is written unquoted and splits the row when read back)
            text = df.to_csv(index=False, sep=sep, lineterminator="\r\n")
            data = text.encode(case.encoding)
        except UnicodeEncodeError:
            data = text.encode(case.encoding, errors="replace")
            case.clean = False
        if case.fmt == "csv.gz":
            data = gzip.compress(data)
    rng = np.random.default_rng(case.meta["seed"])
    how = case.corruption
    if how == "truncate" and data:
        data = data[: int(rng.integers(0, len(data)))]
    elif how == "flip_bytes" and data:
        b = bytearray(data)
        for i in rng.integers(0, len(b), size=min(8, len(b))):
            b[i] = int(rng.integers(0, 256))
        data = bytes(b)
    elif how == "prepend_garbage":
        data = rng.bytes(int(rng.integers(1, 64))) + data
    elif how == "random_bytes":
        data = rng.bytes(int(rng.integers(1, 2048)))
    elif how == "empty":
        data = b""
    elif how == "header_only":
        data = (",".join(map(str, df.columns)) + "\n").encode("utf-8")
    return data
