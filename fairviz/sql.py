"""Audits where the scores live: exact SPDD, DP(τ), selection rates and the LL144 table as SQL.

For 10⁸–10⁹ scores in a warehouse or a folder of Parquet files, nothing is loaded into pandas: the
audit is one SQL statement over a table ``(score, group)``, built by `audit_sql` and run by DuckDB
(embedded, out of core; `run_duckdb`) or printed for a warehouse (``python -m fairviz audit
... --print-sql``). The numbers are those of `fairviz.metrics` (tests check them to 1e-12):

- each group's ECDF ``F_g`` at every distinct score ``s`` is a running sum, in score order, of the
  group's count at ``s`` (one window over the rows in score order, ties taken together by a
  ``RANGE`` frame; the last row of each run of equal scores is kept);
- DP(τ) = max_g − min_g of ``P(score > τ | g) = 1 − F_g(τ)`` is constant between consecutive
  distinct scores, so SPDD = ∫₀¹ DP(τ) dτ = Σ (max_g F_g(s) − min_g F_g(s)) · (s_next − s), with
  ``s_next = 1`` after the highest score (where every ``F_g = 1``, so the term is 0);
- selection rates at τ (strict ``>``), impact ratios (rate / highest rate; NULL when nobody is
  selected), DP(τ), and the NYC Local Law 144 scoring-rate table (the same at τ = the median of
  all scores, computed like ``numpy.median`` from the two middle ranks); small groups (share < 2 %)
  and four-fifths failures (impact ratio < 0.8) are flagged.

The SQL is standard: CTEs, ``GROUP BY``, window functions with a ``WINDOW`` clause, ``GREATEST`` /
``LEAST``, ``CASE``, ``COALESCE``, ``NULLIF``; identifiers in double quotes (backticks in Spark SQL
and BigQuery: pass ``quote="`"``), numbers as ``1e0``-style literals so every product and ratio is
a double. Group values are written into the statement as literals (a first, cheap query lists
them), one count column per group.
"""

from __future__ import annotations

import glob
import math
import numbers
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fairviz import score_range as _range
from fairviz.jsonsafe import json_float
from fairviz.metrics import FOUR_FIFTHS

#: LL144's small group: under this share of the rows (as `fairviz.metrics.scoring_rate_table`).
SMALL_SHARE = 0.02
#: More distinct groups than this is an ID or numeric column chosen by mistake.
MAX_GROUPS = 200
#: DuckDB settings: bounded memory (spilling to a temporary folder beyond it) on a shared machine.
DEFAULT_MEMORY_LIMIT = "2GB"
DEFAULT_THREADS = 2


# ------------------------------------------------------------------------------ SQL text
def ident(name: str, quote: str = '"') -> str:
    """A column or table name as a quoted SQL identifier (the quote character doubled inside)."""
    return quote + str(name).replace(quote, quote * 2) + quote


def number(v: float) -> str:
    """A float as a SQL literal that every dialect reads as a double (exponent form, round-trip exact)."""
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"not a finite number: {v!r}")
    text = repr(f)
    return text if "e" in text else text + "e0"


def literal(v: Any) -> str:
    """A group value as a SQL literal: text quoted (``'`` doubled), integers and floats as numbers."""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return number(v)
    return "'" + str(v).replace("'", "''") + "'"


def _score_expr(score: str, score_range: tuple | None, q: str) -> str:
    s = ident(score, q)
    if score_range is None:
        return s
    lo, hi = _range.check_range(*score_range)
    return f"({s} - {number(lo)}) / {number(hi - lo)}"


def groups_sql(table: str, score: str, group: str, *, score_range: tuple | None = None, quote: str = '"') -> str:
    """Checks and group list: one row per group value (NULL included) with its row count, the
    non-NULL score count, and the lowest and highest (rescaled) score."""
    s = _score_expr(score, score_range, quote)
    return (f"SELECT {ident(group, quote)} AS grp, COUNT(*) AS n, COUNT({s}) AS n_score, MIN({s}) AS lo, "
            f"MAX({s}) AS hi\nFROM {table}\nGROUP BY {ident(group, quote)}\nORDER BY n DESC")


def audit_sql(table: str, score: str, group: str, groups: Sequence, taus: Sequence[float] = (0.5,), *,
              score_range: tuple | None = None, quote: str = '"') -> str:
    """The audit as one SQL statement over ``table`` (a table or view name, already quoted as the
    dialect needs). ``groups``: the group values (from `groups_sql`); ``taus``: thresholds in [0, 1].

    Result: one row per (kind, threshold, group), kind ``'tau'`` for each τ and ``'ll144'`` for the
    median score; columns kind, threshold, grp, n, share, selected, rate, impact_ratio,
    four_fifths_fail, small_group, dp (max − min of the rates at that threshold), spdd (the same
    on every row), median.
    """
    if len(groups) < 2:
        raise ValueError("need two or more groups to compare")
    return _AUDIT_SQL.format(**_audit_fragments(score, group, groups, taus, score_range, quote), table=table,
                             four_fifths=number(FOUR_FIFTHS), small_share=number(SMALL_SHARE))


def _audit_fragments(score: str, group: str, groups: Sequence, taus: Sequence[float], score_range: tuple | None,
                     q: str) -> dict:
    """The parts of `_AUDIT_SQL` that depend on the groups and thresholds: one column (or row) per
    group or threshold, as SQL text."""
    k = range(len(groups))
    s = _score_expr(score, score_range, q)
    g = ident(group, q)
    running = ",\n    ".join(f"SUM(CASE WHEN g = {literal(v)} THEN 1 ELSE 0 END) OVER w AS k{i}"
                               for i, v in enumerate(groups))
    totals = ", ".join(f"MAX(k{i}) AS n{i}" for i in k)
    ecdf = [f"k{i} * 1e0 / n{i}" for i in k]
    gap = f"GREATEST({', '.join(ecdf)}) - LEAST({', '.join(ecdf)})"
    thresholds = "\n  UNION ALL ".join(f"SELECT 'tau' AS kind, {number(t)} AS t FROM totals" for t in taus)
    below = ",\n    ".join(f"COALESCE(MAX(CASE WHEN c.s <= th.t THEN c.k{i} END), 0) AS b{i}" for i in k)
    long = "\n  UNION ALL ".join(f"SELECT a.kind, a.t, {literal(v)} AS grp, n{i} AS n, n{i} - b{i} AS selected "
                                 f"FROM at_t a CROSS JOIN totals" for i, v in enumerate(groups))
    return {"s": s, "g": g, "running": running, "totals": totals, "gap": gap, "thresholds": thresholds,
            "below": below, "long": long}


#: The audit statement (see the module docstring); `audit_sql` fills the fields.
_AUDIT_SQL = """WITH src AS (
  SELECT {s} AS s, {g} AS g FROM {table}
),
running AS (
  SELECT s, LEAD(s) OVER (ORDER BY s) AS s_next,
    COUNT(*) OVER w AS k,
    {running}
  FROM src
  WINDOW w AS (ORDER BY s RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
cum AS (
  SELECT * FROM running WHERE s_next IS NULL OR s_next > s
),
totals AS (
  SELECT MAX(k) AS n, {totals} FROM cum
),
summary AS (
  SELECT SUM(({gap}) * (COALESCE(s_next, 1e0) - s)) AS spdd,
    (MIN(CASE WHEN k >= FLOOR((n + 1) / 2e0) THEN s END)
     + MIN(CASE WHEN k >= FLOOR(n / 2e0) + 1 THEN s END)) / 2e0 AS median
  FROM cum CROSS JOIN totals
),
thresholds AS (
  {thresholds}
  UNION ALL SELECT 'll144' AS kind, median AS t FROM summary
),
at_t AS (
  SELECT th.kind, th.t,
    {below}
  FROM thresholds th CROSS JOIN cum c
  GROUP BY th.kind, th.t
),
per_group AS (
  {long}
),
rated AS (
  SELECT p.kind, p.t, p.grp, p.n, p.n * 1e0 / totals.n AS share, p.selected, p.selected * 1e0 / p.n AS rate
  FROM per_group p CROSS JOIN totals
)
SELECT r.kind, r.t AS threshold, r.grp, r.n, r.share, r.selected, r.rate,
  r.rate / NULLIF(MAX(r.rate) OVER (PARTITION BY r.kind, r.t), 0) AS impact_ratio,
  COALESCE(r.rate / NULLIF(MAX(r.rate) OVER (PARTITION BY r.kind, r.t), 0) < {four_fifths}, FALSE)
    AS four_fifths_fail,
  r.share < {small_share} AS small_group,
  MAX(r.rate) OVER (PARTITION BY r.kind, r.t) - MIN(r.rate) OVER (PARTITION BY r.kind, r.t) AS dp,
  summary.spdd, summary.median
FROM rated r CROSS JOIN summary
ORDER BY r.kind DESC, r.t, r.grp"""


# ------------------------------------------------------------------------------ results
@dataclass
class SqlAudit:
    """What `run_duckdb` returns. ``rates``: pandas DataFrame, the statement's rows (kind 'tau' and
    'll144'); ``group_counts``: group -> rows; ``sql``: the statement that ran (as printed)."""

    n: int
    group_counts: dict
    spdd: float
    median: float
    taus: tuple
    rates: Any = field(repr=False)
    sql: str = field(repr=False)
    score_range: tuple | None = None

    def at(self, tau: float):
        """The rows of the rate table at τ (one per group)."""
        r = self.rates
        return r[(r["kind"] == "tau") & (r["threshold"] == float(tau))].reset_index(drop=True)

    def scoring_rates(self):
        """The NYC Local Law 144 scoring-rate table (rates above the median of all scores)."""
        r = self.rates
        return r[r["kind"] == "ll144"].reset_index(drop=True)

    def to_dict(self) -> dict:
        def rows(df):
            return [{"group": _py(r.grp), "n": int(r.n), "share": float(r.share), "selected": int(r.selected),
                     "rate": float(r.rate), "impact_ratio": json_float(r.impact_ratio),
                     "four_fifths_fail": bool(r.four_fifths_fail),
                     "small_group": bool(r.small_group)} for r in df.itertuples(index=False)]

        return {
            "engine": "duckdb",
            "n": int(self.n),
            "groups": {str(g): int(c) for g, c in self.group_counts.items()},
            "spdd": {"value": float(self.spdd), "ci_low": None, "ci_high": None},
            "dp_at": [{"tau": float(t), "dp": float(self.at(t)["dp"].iloc[0]), "rates": rows(self.at(t))}
                      for t in self.taus],
            "median": float(self.median),
            "scoring_rates": rows(self.scoring_rates()),
            "score_range": _range.to_dict(*self.score_range) if self.score_range else None,
        }


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# ------------------------------------------------------------------------------ DuckDB
def source_relation(path: str) -> str:
    """DuckDB's reader for a file or glob of Parquet or CSV files (read lazily, out of core)."""
    text = str(path)
    lower = text.lower()
    quoted = "'" + text.replace("'", "''") + "'"
    if lower.endswith((".parquet", ".pq")):
        return f"read_parquet({quoted})"
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return f"read_csv({quoted}, header = true)"
    raise ValueError(f"{text}: give Parquet or CSV files (a path or a glob such as 'data/*.parquet')")


def connect(memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int = DEFAULT_THREADS, temp_dir: str | None = None):
    """A DuckDB connection with bounded memory: beyond ``memory_limit`` it spills to ``temp_dir``."""
    import duckdb  # noqa: PLC0415 - optional and heavy: only the SQL engine needs it

    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]?i?B\s*", str(memory_limit), flags=re.I):
        raise ValueError(f"memory limit must look like 2GB or 500MB; got {memory_limit!r}")
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir is not None:
        con.execute("SET temp_directory = " + "'" + str(temp_dir).replace("'", "''") + "'")
    return con


def _check_files(path: str) -> None:
    if not glob.glob(path):
        raise FileNotFoundError(f"no such file: {path}" if not glob.has_magic(path) else f"no file matches {path}")


def _group_list(con, table: str, score: str, group: str, score_range, quote: str) -> tuple[list, dict]:
    import duckdb  # noqa: PLC0415 - optional and heavy: only the SQL engine needs it

    try:
        rows = con.execute(groups_sql(table, score, group, score_range=score_range, quote=quote)).fetchall()
    except duckdb.Error as err:
        raise ValueError(f"cannot audit these columns: {str(err).splitlines()[0]}") from None
    counts = {r[0]: int(r[1]) for r in rows}
    if None in counts:
        raise ValueError(f"group column {group!r} has {counts[None]:,} missing value(s); drop those rows or "
                         "give them an explicit group such as 'unknown'")
    missing = sum(int(r[1]) - int(r[2]) for r in rows)
    if missing:
        raise ValueError(f"score column {score!r} has {missing:,} missing value(s); drop or fill those rows")
    lows, highs = [r[3] for r in rows], [r[4] for r in rows]
    if not all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in lows + highs):
        example = next(v for v in lows + highs if not isinstance(v, numbers.Number) or isinstance(v, bool))
        raise ValueError(f"score column {score!r} does not hold numbers (e.g. {example!r}); scores must be "
                         "numbers in [0, 1]")
    lo, hi = float(min(lows)), float(max(highs))
    if not (lo >= 0.0 and hi <= 1.0):
        hint = "check --score-range" if score_range else "rescale to [0, 1] (e.g. --score-range 0 100)"
        raise ValueError(f"score column {score!r} has values outside [0, 1] (from {lo:g} to {hi:g}); {hint}")
    if len(counts) < 2:
        raise ValueError(f"group column {group!r} has only one group; need two or more to compare")
    if len(counts) > MAX_GROUPS:
        raise ValueError(f"group column {group!r} has {len(counts):,} distinct values (more than {MAX_GROUPS}); "
                         "is it an ID or a numeric column?")
    groups = sorted(counts, key=lambda v: (str(type(v)), v))
    return groups, {g: counts[g] for g in groups}


def run_duckdb(path: str, score: str, group: str, taus: Sequence[float] = (0.5,), *,
               score_range: tuple | None = None, memory_limit: str = DEFAULT_MEMORY_LIMIT,
               threads: int = DEFAULT_THREADS, progress=None) -> SqlAudit:
    """Audit the Parquet/CSV file(s) at ``path`` (a glob is fine) in DuckDB, out of core.

    The files are read through a view called ``scores``, so `SqlAudit.sql` is exactly the statement
    ``--print-sql`` prints (with its default ``--table scores``). Bad input (missing files or
    columns, text or NULL scores, scores outside [0, 1], one group) raises ValueError /
    FileNotFoundError with a one-line message.
    ``progress(text)`` is told when the checks pass and the (long) audit statement starts.
    """
    import duckdb  # noqa: PLC0415 - optional and heavy: only the SQL engine needs it

    _check_files(path)
    taus = tuple(dict.fromkeys(_check_tau(t) for t in taus))
    scratch = tempfile.mkdtemp(prefix="fairviz-duckdb-")
    con = None
    try:
        con = connect(memory_limit, threads, scratch)
        name = "scores"
        try:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {source_relation(path)}")
            columns = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        except duckdb.Error as err:
            raise ValueError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
        for col, role in ((score, "score"), (group, "group")):
            if col not in columns:
                raise ValueError(f"{role} column {col!r} not found; available columns: {', '.join(map(str, columns))}")
        groups, counts = _group_list(con, name, score, group, score_range, '"')
        sql = audit_sql(name, score, group, groups, taus, score_range=score_range)
        if progress is not None:
            progress(f"{sum(counts.values()):,} rows in {len(groups)} groups checked; running the audit SQL")
        try:
            rates = con.execute(sql).df()
        except duckdb.Error as err:
            raise ValueError(f"cannot audit {path}: {str(err).splitlines()[0]}") from None
    finally:
        if con is not None:
            con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return SqlAudit(n=sum(counts.values()), group_counts=counts, spdd=float(rates["spdd"].iloc[0]),
                    median=float(rates["median"].iloc[0]), taus=taus, rates=rates, sql=sql,
                    score_range=None if score_range is None else tuple(map(float, score_range)))


def _check_tau(t) -> float:
    f = float(t)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"--tau must be in [0, 1]; got {t!r}")
    return f


def print_sql(path: str, score: str, group: str, taus: Sequence[float] = (0.5,), *,
              score_range: tuple | None = None, table: str = "scores", quote: str = '"') -> str:
    """The SQL a warehouse runs for this audit: the group list (from a cheap DuckDB query over
    ``path``) written into the statement `audit_sql` builds over ``table``, which is written into
    the SQL as given (e.g. ``analytics.scores``, or a backticked BigQuery name)."""
    table = str(table).strip()
    if not table or any(ch in table for ch in ";\n\r"):
        raise ValueError(f"--table must be a table name such as analytics.scores; got {table!r}")
    with tempfile.TemporaryDirectory(prefix="fairviz-duckdb-") as scratch:
        con = connect(temp_dir=scratch)
        try:
            _check_files(path)
            name = ident("fairviz_source")
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {source_relation(path)}")
            groups, _ = _group_list(con, name, score, group, score_range, '"')
        finally:
            con.close()
    taus = tuple(dict.fromkeys(_check_tau(t) for t in taus))
    return audit_sql(table, score, group, groups, taus, score_range=score_range, quote=quote) + ";"


__all__ = ["audit_sql", "groups_sql", "run_duckdb", "print_sql", "SqlAudit", "ident", "literal", "number",
           "source_relation", "connect"]
