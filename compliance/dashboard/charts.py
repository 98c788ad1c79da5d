"""Coordinates of the dashboard's charts, which templates/admin/dashboard/ draws as SVG.

The page loads no script and nothing from elsewhere (compliance/csp.py): the server works out
every point, bar, tick and line here, and the templates only write them into <svg> elements
with presentation attributes (no style attribute, which the admin's policy would block).

No Django import here.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "PALETTE",
    "BarChart",
    "Frame",
    "LineChart",
    "Series",
    "bar_chart",
    "line_chart",
    "nice_scale",
]

# Okabe and Ito's colours, told apart with every common colour-vision deficiency.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
# At most this many day labels under a chart; the others are left out.
MAX_X_LABELS = 8


@dataclass(frozen=True, slots=True)
class Series:
    """One series as the page has it: a value per day (None: nothing to show that day)."""

    label: str
    values: Sequence[float | None]
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    width: int
    height: int
    left: int = 56
    top: int = 12
    right: int = 12
    bottom: int = 28

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def y_label_x(self) -> int:
        """Where the value labels end, left of the plot."""
        return self.left - 6

    @property
    def x_label_y(self) -> int:
        """The baseline of the day labels, under the plot."""
        return self.height - 8

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    y: float
    title: str


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    colour: str
    href: str | None
    # "x,y x,y ..." for each run of days with a value; a day without one breaks the line.
    segments: tuple[str, ...]
    markers: tuple[Marker, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """A horizontal line at a threshold, e.g. the 0.1% complaint-rate line."""

    label: str
    y: float
    colour: str

    @property
    def label_y(self) -> float:
        return round(self.y - 4, 1)


@dataclass(frozen=True, slots=True)
class LineChart:
    frame: Frame
    lines: tuple[Line, ...]
    rules: tuple[Rule, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class BarChart:
    frame: Frame
    bars: tuple[Bar, ...]
    legend: tuple[tuple[str, str], ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]


def _round(value: float) -> float:
    return round(value, 1)


def nice_scale(maximum: float, ticks: int = 4, *, whole: bool = False) -> tuple[float, float]:
    """(top, step) of an axis from 0 that shows `maximum`: the step is 1, 2, 2.5 or 5 times a
    power of ten (with `whole`, a whole number and never 2.5 times one) and the top a whole
    number of steps."""
    if maximum <= 0 or not math.isfinite(maximum):
        return (float(ticks), 1.0) if whole else (1.0, 0.25)
    rough = maximum / ticks
    power = 10 ** math.floor(math.log10(rough))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in steps if m * power >= rough * (1 - 1e-9))
    if whole:
        step = max(1, round(step))
    top = step * math.ceil(maximum / step - 1e-9)
    return top, step


def _y_ticks(frame: Frame, top: float, step: float, label: Callable[[float], str]) -> tuple:
    count = round(top / step)
    return tuple(
        Tick(_round(frame.plot_bottom - i * step / top * frame.plot_height), label(i * step))
        for i in range(count + 1)
    )


def _slot_centre(frame: Frame, index: int, days: int) -> float:
    return frame.left + (index + 0.5) * frame.plot_width / days


def _x_ticks(frame: Frame, days: Sequence[datetime.date]) -> tuple[Tick, ...]:
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    last = len(days) - 1
    # Counted back from the last day, so today always has its label.
    return tuple(
        Tick(_round(_slot_centre(frame, i, len(days))), f"{day.day} {day:%b}")
        for i, day in enumerate(days)
        if (last - i) % every == 0
    )


def line_chart(
    days: Sequence[datetime.date],
    series: Sequence[Series],
    *,
    rules: Sequence[tuple[str, float]] = (),
    value_label: Callable[[float], str] = str,
    least_top: float = 0.0,
    width: int = 720,
    height: int = 260,
) -> LineChart:
    """One line per series over `days` (each series has one value per day), horizontal rules at
    the given (label, value) pairs. The axis reaches at least `least_top`, every value and every
    rule, so the rules are always in sight."""
    if any(len(s.values) != len(days) for s in series):
        raise ValueError("every series needs exactly one value per day")
    frame = Frame(width, height)
    values = [v for s in series for v in s.values if v is not None]
    top, step = nice_scale(max([least_top, *values, *(value for _, value in rules)]))

    def y_of(value: float) -> float:
        return _round(frame.plot_bottom - value / top * frame.plot_height)

    lines = []
    for index, item in enumerate(series):
        segments, run, markers = [], [], []
        for i, (day, value) in enumerate(zip(days, item.values, strict=True)):
            if value is None:
                if run:
                    segments.append(" ".join(run))
                run = []
                continue
            x, y = _round(_slot_centre(frame, i, len(days))), y_of(value)
            run.append(f"{x},{y}")
            markers.append(Marker(x, y, f"{item.label}, {day.isoformat()}: {value_label(value)}"))
        if run:
            segments.append(" ".join(run))
        lines.append(
            Line(
                label=item.label,
                colour=PALETTE[index % len(PALETTE)],
                href=item.href,
                segments=tuple(segments),
                markers=tuple(markers),
            )
        )
    rule_colours = ("#b58900", "#ba2121")
    drawn_rules = tuple(
        Rule(label, y_of(value), rule_colours[min(i, len(rule_colours) - 1)])
        for i, (label, value) in enumerate(sorted(rules, key=lambda r: r[1]))
    )
    return LineChart(
        frame=frame,
        lines=tuple(lines),
        rules=drawn_rules,
        x_ticks=_x_ticks(frame, days),
        y_ticks=_y_ticks(frame, top, step, value_label),
    )


def bar_chart(
    days: Sequence[datetime.date],
    series: Sequence[Series],
    *,
    value_label: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 720,
    height: int = 220,
) -> BarChart:
    """Bars side by side for each day, one per series (a missing value draws no bar)."""
    if any(len(s.values) != len(days) for s in series):
        raise ValueError("every series needs exactly one value per day")
    frame = Frame(width, height)
    highest = max([v for s in series for v in s.values if v is not None] or [0])
    top, step = nice_scale(highest, whole=True)
    slot = frame.plot_width / max(len(days), 1)
    bar_width = slot * 0.8 / max(len(series), 1)
    bars = []
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        for i, (day, value) in enumerate(zip(days, item.values, strict=True)):
            if not value:
                continue
            height_ = value / top * frame.plot_height
            bars.append(
                Bar(
                    x=_round(frame.left + i * slot + slot * 0.1 + index * bar_width),
                    y=_round(frame.plot_bottom - height_),
                    width=_round(bar_width),
                    height=_round(height_),
                    colour=colour,
                    title=f"{item.label}, {day.isoformat()}: {value_label(value)}",
                )
            )
    return BarChart(
        frame=frame,
        bars=tuple(bars),
        legend=tuple((s.label, PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)),
        x_ticks=_x_ticks(frame, days),
        y_ticks=_y_ticks(frame, top, step, value_label),
    )
