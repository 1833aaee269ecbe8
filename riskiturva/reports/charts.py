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
