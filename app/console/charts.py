"""Charts as geometry for server-rendered SVG: bars and points, with axes, units and hover values.

No script and no chart library: the template (console/_chart.html) draws
what these functions lay out, and each bar or point carries a <title> that
browsers show on hover. Coordinates are in the SVG's own units
(WIDTH x HEIGHT); the stylesheet scales the drawing to the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 280
# Room for the y-axis labels on the left and the x-axis labels below.
LEFT, RIGHT, TOP, BOTTOM = 70, 14, 14, 52
TICKS = 5


@dataclass(frozen=True)
class Segment:
    """One rectangle: a whole bar, or one series' part of a stacked bar."""

    x: float
    y: float
    width: float
    height: float
    series: int


@dataclass(frozen=True)
class Bar:
    """A bar (possibly stacked) with the text shown on hover."""

    segments: tuple[Segment, ...]
    title: str


@dataclass(frozen=True)
class Point:
    """A point with the text shown on hover."""

    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Tick:
    """An axis mark: where it is, and its label."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the template draws: plot area, axes, bars or points, legend."""

    title: str
    x_label: str
    y_label: str
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    bars: tuple[Bar, ...] = ()
    points: tuple[Point, ...] = ()
    legend: tuple[str, ...] = ()
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM
    line: str = field(default="")


def nice_step(span: float, parts: int = TICKS) -> float:
    """A step of 1, 2 or 5 times a power of ten that cuts ``span`` into about ``parts``."""
    if span <= 0:
        return 1.0
    raw = span / parts
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _y_scale(top_value: float, counts: bool = False) -> tuple[float, tuple[Tick, ...], float]:
    """The axis maximum, its ticks and the pixels per unit, for values from 0 to ``top_value``.

    A count axis (``counts``) steps by whole numbers: there is no half a patient.
    """
    step = nice_step(top_value)
    if counts:
        step = max(step, 1.0)
    maximum = max(step, math.ceil(top_value / step) * step)
    per_unit = (HEIGHT - BOTTOM - TOP) / maximum
    ticks = tuple(
        Tick(HEIGHT - BOTTOM - i * step * per_unit, _number(i * step))
        for i in range(round(maximum / step) + 1)
    )
    return maximum, ticks, per_unit


def _every(labels: Sequence[str], slots: Sequence[float], most: int = 8) -> tuple[Tick, ...]:
    """At most ``most`` evenly spread x labels: more would overlap."""
    stride = max(1, math.ceil(len(labels) / most))
    return tuple(Tick(slots[i], labels[i]) for i in range(0, len(labels), stride))


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[float]],
    *,
    x_label: str,
    y_label: str,
    hover: Sequence[str] | None = None,
    counts: bool = False,
) -> Chart:
    """One bar per label, stacked from ``values[i][s]`` for each series ``s``.

    ``hover`` gives each bar's title; by default its label and every series' value.
    ``counts``: the values are counts, and the y axis marks whole numbers only.
    """
    plot = WIDTH - RIGHT - LEFT
    slot = plot / max(len(labels), 1)
    gap = min(slot * 0.2, 6.0)
    _, y_ticks, per_unit = _y_scale(max((sum(v) for v in values), default=0), counts)
    bars = []
    for i, (label, parts) in enumerate(zip(labels, values, strict=True)):
        base = HEIGHT - BOTTOM
        segments = []
        for s, value in enumerate(parts):
            if value:
                height = value * per_unit
                base -= height
                segments.append(Segment(LEFT + i * slot + gap / 2, base, slot - gap, height, s))
        text = (
            hover[i]
            if hover is not None
            else f"{label}: "
            + ", ".join(f"{name} {_number(v)}" for name, v in zip(series, parts, strict=True))
        )
        bars.append(Bar(tuple(segments), text))
    centers = [LEFT + (i + 0.5) * slot for i in range(len(labels))]
    return Chart(
        title,
        x_label,
        y_label,
        y_ticks,
        _every(labels, centers),
        bars=tuple(bars),
        legend=tuple(series) if len(series) > 1 else (),
    )


def points(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    x_label: str,
    y_label: str,
    hover: Sequence[str],
) -> Chart:
    """One point per label, joined by a line, with its value on hover."""
    plot = WIDTH - RIGHT - LEFT
    slot = plot / max(len(labels), 1)
    _, y_ticks, per_unit = _y_scale(max(values, default=0))
    dots = tuple(
        Point(LEFT + (i + 0.5) * slot, HEIGHT - BOTTOM - value * per_unit, hover[i])
        for i, value in enumerate(values)
    )
    line = " ".join(f"{p.x:.1f},{p.y:.1f}" for p in dots)
    return Chart(
        title,
        x_label,
        y_label,
        y_ticks,
        _every(labels, [p.x for p in dots]),
        points=dots,
        line=line,
    )


def _number(value: float) -> str:
    """An axis or hover number: whole numbers with thousands separators, else two decimals."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 0.01 else f"{value:.3g}"
