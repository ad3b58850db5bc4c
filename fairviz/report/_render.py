"""Drawing an `AuditReport` as one self-contained HTML document through the Jinja2 templates in
``templates/``. Autoescaping is on: every string from the data object (file, column and group
names, free text) is escaped once by the template, so it is shown exactly as written and never
read as HTML. Figures are the only markup passed through; plotly writes their data with ``<``
and ``>`` escaped and `fairviz.theme.plotly_text` escapes the names inside them for Plotly.
"""

from __future__ import annotations

import math
from typing import Any

import jinja2
from markupsafe import Markup

from fairviz.report._model import FOUR_FIFTHS, AuditReport

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                  "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


class _FigureWriter:
    """Turns figures into <div>s in the order the template asks for them; plotly.js is inlined
    with the first one only."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig) -> Markup:
        self.count += 1
        out = fig.to_html(full_html=False, include_plotlyjs=self.count == 1, config=_PLOTLY_CONFIG,
                          div_id=f"fig{self.count}")
        return Markup(f"<div class='figure'>{out}</div>")  # plotly writes its data escaped


def num(v: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; "—" for None, NaN and infinities; other values as text."""
    if v is None:
        return "—"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "—"
    if f == int(f) and abs(f) >= 1 and digits == 0:
        return f"{int(f):,}"
    return f"{f:.{digits}f}"


def count(v: Any) -> str:
    """An integer with thousands separators."""
    return f"{int(v):,}"


def pval(p: Any) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "—"
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def percent(v: float) -> str:
    """A share in [0, 1] as a whole percentage, e.g. 95%."""
    return f"{v:.0%}"


def general(v: float) -> str:
    """A number in Python's shortest general format, e.g. 0.05."""
    return f"{v:g}"


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("fairviz.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)
_ENV.filters.update(num=num, count=count, pval=pval, percent=percent, general=general)
_ENV.globals.update(four_fifths=FOUR_FIFTHS)


def render(report: AuditReport) -> str:
    """The report as one HTML document (str)."""
    return _ENV.get_template("report.html.j2").render(r=report, s=report.settings, figure=_FigureWriter())
