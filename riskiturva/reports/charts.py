"""Charts for the reports, drawn server-side with Matplotlib (no browser, no network).

Figures are built with the object API (`Figure`, not `pyplot`), so no global figure state
survives between scheduled runs, and saved as SVG with fixed ids and no date, so the same
data always draws the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.patches
from matplotlib.figure import Figure

from riskiturva.scoring import GRADE_FLOORS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Grade bands, best first: (grade, lowest score, colour).
_BAND_COLOURS = {"A": "#d9f0d3", "B": "#eef6d5", "C": "#fdf3cf", "D": "#fde0c5", "F": "#f8d0cc"}
_LINE = "#1f4e79"
_SVG_SETTINGS: dict[RcKeyType, Any] = {
    "svg.hashsalt": "riskiturva",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
}


def _bands() -> list[tuple[str, float, float]]:
    """(grade, low, high) in points for each grade."""
    bands, top = [], 100.0
    for grade, floor in GRADE_FLOORS:
        bands.append((str(grade), floor / 10, top))
        top = floor / 10
    return bands


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


def data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def trend_chart(
    labels: Sequence[str],
    scores: Sequence[float | None],
    grades: Sequence[str | None],
    *,
    score_label: str,
) -> bytes:
    """Score by month on the grade bands, with each month's grade above its point.

    Months without a score are gaps in the line, never zeros.
    """
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure = Figure(figsize=(7.0, 2.6))
        axes = figure.add_subplot()
        for grade, low, high in _bands():
            axes.axhspan(low, high, color=_BAND_COLOURS[grade], linewidth=0)
            axes.text(
                len(labels) - 0.45, (low + high) / 2, grade, va="center", fontsize=8, color="#666"
            )
        positions = range(len(labels))
        axes.plot(positions, [s if s is not None else float("nan") for s in scores], color=_LINE)
        for x, score, letter in zip(positions, scores, grades, strict=True):
            if score is None:
                continue
            axes.plot([x], [score], marker="o", color=_LINE, markersize=4)
            axes.annotate(
                letter or "",
                (x, score),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
                fontweight="bold",
                color=_LINE,
            )
        axes.set_xlim(-0.5, len(labels) - 0.2)
        axes.set_ylim(0, 105)
        axes.set_xticks(list(positions), labels, fontsize=8)
        axes.tick_params(axis="y", labelsize=8)
        axes.set_ylabel(score_label, fontsize=8)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        return _svg(figure)


def sparkline(scores: Sequence[float | None]) -> bytes:
    """A small chart of monthly scores on the grade bands for the portfolio table (0–100;
    every month with a score is a dot, so a short history still shows)."""
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure = Figure(figsize=(1.9, 0.5))
        axes = figure.add_axes((0, 0, 1, 1))
        for grade, low, high in _bands():
            axes.axhspan(low, high, color=_BAND_COLOURS[grade], linewidth=0)
        values = [s if s is not None else float("nan") for s in scores]
        axes.plot(range(len(values)), values, color=_LINE, linewidth=1.2)
        known = [(x, s) for x, s in enumerate(scores) if s is not None]
        axes.plot([x for x, _ in known], [s for _, s in known], "o", color=_LINE, markersize=2.2)
        axes.set_xlim(-0.5, len(values) - 0.5)
        axes.set_ylim(0, 100)
        axes.axis("off")
        return _svg(figure)


def peer_chart(
    own: float, lower: float, median: float, upper: float, *, own_label: str, group_label: str
) -> bytes:
    """Where the reader stands in its peer group, on a 0–100 strip of grade bands: the
    middle half of the group as a box with its median, the reader as a marker. No other
    organisation's score is drawn (riskiturva/peers.py)."""
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure = Figure(figsize=(7.0, 0.75))
        axes = figure.add_axes((0.02, 0.3, 0.96, 0.45))
        for grade, low, high in _bands():
            axes.axvspan(low, high, color=_BAND_COLOURS[grade], linewidth=0)
            # The band's letter in its top left corner, clear of the box and the labels.
            axes.text(low + 0.6, 0.96, grade, ha="left", va="top", fontsize=6.5, color="#666")
        axes.add_patch(
            matplotlib.patches.Rectangle(
                (lower, 0.12),
                max(upper - lower, 0.6),
                0.5,
                facecolor="#9bb3cc",
                edgecolor=_LINE,
                linewidth=0.8,
            )
        )
        axes.plot([median, median], [0.04, 0.7], color=_LINE, linewidth=2)
        axes.annotate(
            group_label,
            (median, 0.0),
            xytext=(0, -9),
            textcoords="offset points",
            ha=_edge_alignment(median),
            va="top",
            fontsize=7,
            color=_LINE,
        )
        axes.plot([own], [0.37], marker="v", markersize=9, color="#c62828", clip_on=False)
        axes.annotate(
            own_label,
            (own, 1.0),
            xytext=(0, 4),
            textcoords="offset points",
            ha=_edge_alignment(own),
            va="bottom",
            fontsize=7.5,
            fontweight="bold",
            color="#c62828",
        )
        axes.set_xlim(0, 100)
        axes.set_ylim(0, 1)
        axes.set_yticks([])
        axes.set_xticks([0, 100], ["0", "100"], fontsize=7)
        for side in ("top", "right", "left"):
            axes.spines[side].set_visible(False)
        return _svg(figure)


def _edge_alignment(value: float) -> str:
    """A label's alignment at `value` on a 0–100 axis: near an edge it grows inwards."""
    return "left" if value < 15 else "right" if value > 85 else "center"
