"""Training progress per epoch: loss terms and validation PCC / SPDD."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairviz import theme

_NOT_LOSSES = frozenset({"epoch", "epochs", "losses", "stage", "step", "steps", "lambda", "grl_lambda",
                         "time", "seconds", "lr", "adv_acc"})


def history_figure(history: Sequence[Mapping[str, Any]], *, title: str | None = "Training progress") -> go.Figure:
    """Per-epoch training curves: loss terms (left) and validation PCC and SPDD (right).

    ``history`` is a list of dicts with ``epoch`` and any of: ``losses`` (dict of loss terms) or
    loss keys at top level (``loss``, ``mse``, ``wasserstein``, ``adversary``, ...), ``val_pcc``,
    ``val_spdd``. Unknown/missing keys are skipped; an empty history gives empty axes.
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Loss terms (train)", "Validation PCC and SPDD"))
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    loss_rows: list[dict[str, float]] = []
    for h in history:
        terms = dict(h.get("losses") or {})
        for k, v in h.items():
            if k not in _NOT_LOSSES and not k.startswith("val_") \
                    and isinstance(v, (int, float)) and not isinstance(v, bool):
                terms.setdefault(k, v)
        loss_rows.append(terms)
    keys = sorted({k for r in loss_rows for k in r})
    for i, k in enumerate(keys):
        fig.add_trace(
            go.Scatter(x=epochs, y=[r.get(k, np.nan) for r in loss_rows], mode="lines+markers", name=k,
                       line=dict(color=theme.OKABE_ITO[(i + 2) % len(theme.OKABE_ITO)], width=2)),
            row=1, col=1,
        )
    for key, label, color in (("val_pcc", "val PCC", theme.METHOD_COLORS["ours"]),
                              ("val_spdd", "val SPDD", theme.GROUP_PALETTE[0])):
        ys = [h.get(key, np.nan) for h in history]
        if any(v is not None and np.isfinite(v) for v in ys):
            fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers", name=label,
                                     line=dict(color=color, width=2.5)), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(template=theme.TEMPLATE_NAME, title=title, height=360)
    return fig
