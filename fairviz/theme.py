"""One look for every fairviz figure: a registered Plotly template and fixed colours.

The app (`app_pages/`) and the HTML report (`fairviz.report`) both draw through `fairviz.figures`,
which uses the template registered here as ``plotly.io.templates["fairviz"]``, so a chart looks
the same on screen and in a downloaded report.

Colours come from the Okabe–Ito palette (safe for the common forms of colour blindness).
Groups get colours by their position in the sorted group labels, so group 0 (the unprivileged
group in the synthetic data) is always vermillion and group 1 (privileged) always blue, on every
page; methods get one fixed colour each. Continuous values (scores) use the Cividis scale, which
is perceptually uniform and colour-blind safe.

Importing this module registers the template; it does not change Plotly's global default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from fairviz.safety import isolate_bidi

TEMPLATE_NAME = "fairviz"

# Okabe & Ito (2008), "Color Universal Design". Yellow (#F0E442) is left out: too pale on white.
OKABE_ITO = (
    "#D55E00",  # vermillion
    "#0072B2",  # blue
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
)

#: Paul Tol's "muted" scheme (colour-blind safe), for intersections with many groups.
TOL_MUTED = ("#332288", "#88CCEE", "#117733", "#999933", "#882255", "#44AA99", "#CC6677", "#AA4499")

#: Colours for groups by position in the sorted group labels (0 → vermillion, 1 → blue, ...);
#: Okabe–Ito first, then Tol's muted colours: 15 distinct colours before they repeat.
GROUP_PALETTE = OKABE_ITO + TOL_MUTED

#: One fixed colour per training method (the methods of `fairviz.train.METHODS`).
METHOD_COLORS = {
    "vanilla": "#6E6E6E",
    "balancing": "#E69F00",
    "adversarial": "#56B4E9",
    "l2": "#009E73",
    "mmd": "#CC79A7",
    "ours": "#0072B2",
    "fairoffset": "#D55E00",
}

#: Colour scale for continuous values (scores): perceptually uniform and colour-blind safe.
SCORE_COLORSCALE = "Cividis"

#: Fill of the area under DP(τ) (= SPDD).
SPDD_FILL = "rgba(0, 114, 178, 0.22)"
SPDD_LINE = "#0072B2"
#: Shading of τ ranges where a group's impact ratio is under 0.8.
VIOLATION_FILL = "rgba(213, 94, 0, 0.13)"
#: The τ marker line.
TAU_LINE = "#333333"
#: Neutral colour for reference lines and secondary traces.
NEUTRAL = "#6E6E6E"

FONT_FAMILY = "Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"


def _build_template() -> go.layout.Template:
    axis = dict(
        showgrid=True,
        gridcolor="#E5E5E5",
        zeroline=False,
        linecolor="#9E9E9E",
        ticks="outside",
        tickcolor="#9E9E9E",
        title=dict(font=dict(size=14)),
        automargin=True,
    )
    layout = go.Layout(
        font=dict(family=FONT_FAMILY, size=14, color="#222222"),
        title=dict(font=dict(size=17), x=0.0, xanchor="left", y=0.98, yanchor="top"),
        colorway=list(OKABE_ITO),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=axis,
        yaxis=axis,
        # legend under the plot: never collides with titles or subplot titles
        legend=dict(
            orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0.0,
            bgcolor="rgba(255,255,255,0.6)", font=dict(size=13),
        ),
        margin=dict(l=60, r=20, t=60, b=40),
        hoverlabel=dict(font=dict(family=FONT_FAMILY, size=13)),
        hovermode="closest",
        colorscale=dict(sequential=SCORE_COLORSCALE),
        bargap=0.02,
    )
    return go.layout.Template(layout=layout)


TEMPLATE = _build_template()
pio.templates[TEMPLATE_NAME] = TEMPLATE


def group_colors(groups: Iterable) -> dict:
    """Map each group label to its colour.

    Colours follow the position of a label in the *sorted* labels (the order
    `fairviz.metrics.validate_inputs` uses), so the same group set always gets the same colours,
    wherever it is drawn. More groups than palette colours cycle through the palette.
    """
    labels = list(groups)
    try:
        ordered = sorted(set(labels))
    except TypeError:  # mixed, unorderable labels: sort by their text
        ordered = sorted(set(labels), key=str)
    return {g: GROUP_PALETTE[i % len(GROUP_PALETTE)] for i, g in enumerate(ordered)}


def method_color(method: str, fallback_index: int = 0) -> str:
    """The fixed colour of a training method; unknown methods get a palette colour by index."""
    return METHOD_COLORS.get(str(method), OKABE_ITO[fallback_index % len(OKABE_ITO)])


def series_colors(names: Sequence[str], methods: Sequence[str] | None = None) -> dict[str, str]:
    """Colours for several named series (e.g. runs): by method when known and unique, else by order.

    Two runs of the same method would share a colour, so in that case every series gets a
    palette colour by its position instead.
    """
    names = list(names)
    if methods is not None and len(methods) == len(names):
        known = [m for m in methods if m in METHOD_COLORS]
        if len(known) == len(names) and len(set(known)) == len(known):
            return {n: METHOD_COLORS[m] for n, m in zip(names, methods)}
    return {n: OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(names)}


def with_alpha(hex_color: str, alpha: float) -> str:
    """`#RRGGBB` → `rgba(r, g, b, alpha)` (for translucent fills of a group's colour)."""
    h = hex_color.lstrip("#")
    if len(h) != 6:
        raise ValueError(f"expected a colour like '#0072B2', got {hex_color!r}")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha:g})"


def group_label(label) -> str:
    """A group label as plain text (tables, messages, CSV): `group 0`, `group 1`, or the label
    itself exactly as written (no escaping: the caller's medium escapes it)."""
    if isinstance(label, (int,)) or (hasattr(label, "dtype") and getattr(label.dtype, "kind", "") in "iu"):
        return f"group {int(label)}"
    return str(label)


def plotly_text(text) -> str:
    """``text`` safe to show verbatim in a Plotly name, title or hover label.

    Plotly reads a subset of HTML and entities in these strings and fills ``%{...}`` in hover
    templates, so ``&``, ``<``, ``>`` and ``%`` become numeric/named entities that it turns back
    into the same characters on screen (a user's ``<40`` is shown as ``<40``, never as a tag).
    """
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("%", "&#37;"))


def group_name(label) -> str:
    """How a group label is shown in a Plotly figure: `group_label`, escaped by `plotly_text`, with
    right-to-left text isolated (`fairviz.safety.isolate_bidi`) so it cannot reorder what follows.
    For tables and text use `group_label` (this escaping must not leak there)."""
    return isolate_bidi(plotly_text(group_label(label)))
