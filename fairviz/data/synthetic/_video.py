"""Video: a drawn talking head whose motion carries q and whose appearance carries S."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fairviz.data.synthetic._interviews import _STREAM_VIDEO, _child_rng, _mix, _sigmoid

_SUPERSAMPLE = 2  # draw at 2x and downscale with area averaging (smooth sub-pixel motion)

# Endpoints of the appearance proxy (RGB), interpolated by t = sigmoid(1.6 * proxy).
_BG_LOW, _BG_HIGH = np.array([196.0, 120.0, 150.0]), np.array([80.0, 130.0, 190.0])
_HAIR_LOW, _HAIR_HIGH = np.array([150.0, 95.0, 45.0]), np.array([45.0, 35.0, 30.0])
_CLOTH_LOW, _CLOTH_HIGH = np.array([190.0, 80.0, 110.0]), np.array([50.0, 70.0, 120.0])


def _video_params(seed: int, i: int, q: float, s: float, st: dict[str, float]) -> dict[str, Any]:
    rng = _child_rng(seed, _STREAM_VIDEO, i)
    e_sig, e_prox, *u = rng.standard_normal(2).tolist() + rng.random(12).tolist()
    expr = float(_sigmoid(1.6 * _mix(st["video_signal"], q, e_sig)))  # expressiveness in (0, 1)
    look = float(_sigmoid(1.6 * _mix(st["video_shortcut"], 2.0 * s - 1.0, e_prox)))  # appearance
    skin_base = np.array([224.0, 182.0, 150.0]) * (0.8 + 0.25 * u[0])  # nuisance, S-independent
    return {
        "expr": expr,
        "look": look,
        "bg": _BG_LOW + (_BG_HIGH - _BG_LOW) * look + (u[1] - 0.5) * 40.0,
        "hair": _HAIR_LOW + (_HAIR_HIGH - _HAIR_LOW) * look + (u[2] - 0.5) * 30.0,
        "cloth": _CLOTH_LOW + (_CLOTH_HIGH - _CLOTH_LOW) * look + (u[3] - 0.5) * 50.0,
        "skin": skin_base,
        "hair_len": 1.0 - look,  # 0 = short, 1 = long
        "cx": 0.5 + (u[4] - 0.5) * 0.10,
        "cy": 0.46 + (u[5] - 0.5) * 0.08,
        "scale": 0.92 + 0.16 * u[6],
        "light": 0.85 + 0.3 * u[7],
        # q drives the motion: mouth amplitude, speaking rate, smile, nods.
        "mouth_amp": 0.15 + 0.85 * expr,
        "mouth_rate": 1.2 + 2.5 * expr,  # mouth open/close cycles per second
        "mouth_phase": u[8] * math.pi,
        "smile": expr,
        "nod_amp": 0.005 + 0.05 * expr,  # fraction of the frame height
        "nod_phase": u[9] * 2.0 * math.pi,
        "blink_frame": int(u[10] * 12),  # may be beyond the clip: no blink
        "turn": (u[11] - 0.5) * 0.04,
    }


def _draw_frames(p: dict[str, Any], frames: int, size: int, seconds: float) -> np.ndarray:
    """The clip of one candidate: uint8 (frames, size, size, 3) RGB, frame j at time
    (j + 0.5) / frames * seconds, drawn at ``_SUPERSAMPLE`` × size and downscaled."""
    import cv2  # noqa: PLC0415 - OpenCV is slow to import; only drawing needs it

    r = size * _SUPERSAMPLE
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    canvas = np.empty((r, r, 3), dtype=np.uint8)
    look = _head_look(p, r)
    for j in range(frames):
        _draw_head(canvas, p, look, j, (j + 0.5) / frames * seconds)
        out[j] = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _head_look(p: dict[str, Any], r: int) -> dict[str, Any]:
    """What stays fixed over a clip: the lit colours and the sizes (pixels on the r × r canvas)."""
    light = p["light"]

    def col(c: np.ndarray) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.clip(c * light, 0, 255))

    sc = p["scale"] * r
    mw = int(round((0.065 + 0.035 * p["smile"]) * sc))  # mouth half-width grows with the smile
    return {
        "r": r, "sc": sc, "mw": mw,
        "bg": col(p["bg"]), "hair": col(p["hair"]), "cloth": col(p["cloth"]), "skin": col(p["skin"]),
        "dark": col(np.array([40.0, 30.0, 30.0])),
        "lips": col(np.array([170.0, 70.0, 70.0])),
        "mouth_in": col(np.array([70.0, 20.0, 25.0])),
        "face_ax": (int(round(0.21 * sc)), int(round(0.27 * sc))),
        "hair_ax": (int(round(0.25 * sc)), int(round(0.25 * sc))),
        "cloth_ax": (int(0.42 * sc), int(0.22 * sc)),
        "fringe_ax": (int(0.2 * sc), int(0.09 * sc)),
        "half": int(round(0.25 * sc)), "neck": int(round(0.08 * sc)),
        "eye_r": max(1, int(round(0.028 * sc))),
        "lip_ax": (mw, max(1, int(round(0.012 * sc * (1 + 2 * p["smile"]))))),
    }


def _draw_head(canvas: np.ndarray, p: dict[str, Any], k: dict[str, Any], j: int, t: float) -> None:
    """Draw frame ``j`` (at ``t`` seconds) of the head with look ``k`` onto ``canvas`` (r, r, 3)."""
    import cv2  # noqa: PLC0415 - OpenCV is slow to import; only drawing needs it

    aa, fill, r, sc = cv2.LINE_AA, -1, k["r"], k["sc"]
    nod = p["nod_amp"] * r * math.sin(2.0 * math.pi * 0.9 * t + p["nod_phase"])
    cx = p["cx"] * r + p["turn"] * r * math.sin(2.0 * math.pi * 0.4 * t)
    cy = p["cy"] * r + nod
    x = int(round(cx))
    canvas[:] = k["bg"]
    # hair; long hair falls behind the shoulders (covered by clothes, neck and face)
    top = int(round(cy - 0.06 * sc))
    cv2.ellipse(canvas, (x, top), k["hair_ax"], 0, 0, 360, k["hair"], fill, aa)
    if p["hair_len"] > 0.05:
        bottom = int(round(cy + (0.05 + 0.45 * p["hair_len"]) * sc))
        cv2.rectangle(canvas, (x - k["half"], top), (x + k["half"], bottom), k["hair"], fill, aa)
    # shoulders / clothing, neck, face, fringe
    cv2.ellipse(canvas, (x, int(round(r * 1.02))), k["cloth_ax"], 0, 0, 360, k["cloth"], fill, aa)
    neck_box = ((x - k["neck"], int(round(cy))), (x + k["neck"], int(round(cy + 0.36 * sc))))
    cv2.rectangle(canvas, *neck_box, k["skin"], fill, aa)
    cv2.ellipse(canvas, (x, int(round(cy))), k["face_ax"], 0, 0, 360, k["skin"], fill, aa)
    cv2.ellipse(canvas, (x, int(round(cy - 0.20 * sc))), k["fringe_ax"], 0, 180, 360, k["hair"], fill, aa)
    # eyes (a blink closes them for one frame)
    ey, eye_r = int(round(cy - 0.04 * sc)), k["eye_r"]
    for dx in (-0.085, 0.085):
        ex = int(round(cx + dx * sc))
        if j == p["blink_frame"]:
            cv2.line(canvas, (ex - eye_r, ey), (ex + eye_r, ey), k["dark"], 1, aa)
        else:
            cv2.circle(canvas, (ex, ey), eye_r, k["dark"], fill, aa)
    # mouth: the opening follows a talking rhythm; width and upturn follow the smile
    opening = p["mouth_amp"] * abs(math.sin(math.pi * p["mouth_rate"] * t + p["mouth_phase"]))
    mc = (x, int(round(cy + 0.13 * sc)))
    mh = int(round(0.065 * sc * opening))
    cv2.ellipse(canvas, mc, k["lip_ax"], 0, 0, 180, k["lips"], fill, aa)
    if mh >= 1:
        cv2.ellipse(canvas, mc, (max(1, k["mw"] - 1), mh), 0, 0, 360, k["mouth_in"], fill, aa)
