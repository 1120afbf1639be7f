"""Daily charts as SVG geometry, drawn on the server: bars per day (successful and failed sessions,
stacked by policy type; reports), and numbered marks on the time axis where something changed.

Numbers in, shapes out, positions rounded to hundredths. The template (review/_review.html) writes
the SVG; a bar writes itself (escaped): a year of days is thousands of them.
"""

import math
from dataclasses import dataclass, field
from datetime import date

from markupsafe import Markup

POLICY_TYPE_ORDER = ("sts", "tlsa", "no-policy-found")
WIDTH = 900
LEFT = 64  # room for the y-axis labels
RIGHT = 8
PANEL_HEIGHT = 140
PANEL_GAP = 34  # the panel's title above it
AXIS_HEIGHT = 26
MARK_ROW = 18  # the numbered marks under the x axis


_RECT = Markup('<rect class="series-%s" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>')


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    policy_type: str
    title: str

    def __html__(self) -> Markup:
        return _RECT % (self.policy_type, self.x, self.y, self.width, self.height, self.title)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class Panel:
    title: str
    top: float
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)


@dataclass(frozen=True)
class Mark:
    number: int
    x: float
    day: date
    kind: str
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    panels: list[Panel]
    x_ticks: list[Tick]
    axis_y: float
    marks: list[Mark]
    policy_types: tuple[str, ...]


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(int(step * power) for step in (1, 2, 5, 10) if step * power >= value)


SESSIONS = ("Successful sessions", "Failed sessions")


def daily_chart(days: list[tuple[date, dict[str, tuple[int | None, ...]]]], changes: list[tuple[date, str, str]],
                titles: tuple[str, ...] = SESSIONS) -> Chart:
    """`days`: every day of the range in order, each with one value per panel (`titles`) by series (a
    policy type); `changes`: (day, kind, text) to mark. A panel whose values are all None is left out
    (successful sessions, when a filter leaves only the failure details to count)."""
    count = max(1, len(days))
    step = (WIDTH - LEFT - RIGHT) / count
    bar_width = max(step * 0.8, 0.6)
    drawn = [index for index in range(len(titles))
             if any(values[index] is not None for _, by_series in days for values in by_series.values())] or [-1]
    panels = [Panel(titles[index], PANEL_GAP + n * (PANEL_HEIGHT + PANEL_GAP)) for n, index in enumerate(drawn)]
    for panel, index in zip(panels, drawn, strict=True):
        peak = max((sum(values[index] or 0 for values in by_series.values()) for _, by_series in days), default=0)
        ceiling = nice_ceiling(peak)
        scale = PANEL_HEIGHT / ceiling
        panel.y_ticks = [Tick(round(panel.top + PANEL_HEIGHT - value * scale, 2), f"{value:,}")
                         for value in sorted({0, ceiling // 2, ceiling})]
        for n, (day, by_series) in enumerate(days):
            base = panel.top + PANEL_HEIGHT
            for series in _ordered(by_series):
                value = by_series[series][index] or 0
                if value:
                    height = value * scale
                    base -= height
                    panel.bars.append(Bar(round(LEFT + n * step + (step - bar_width) / 2, 2), round(base, 2),
                                          round(bar_width, 2), round(height, 2), series,
                                          f"{day.isoformat()} {series}: {value:,} ({panel.title.lower()})"))
    axis_y = panels[-1].top + PANEL_HEIGHT
    first = days[0][0] if days else date.today()
    marks = [Mark(number, round(LEFT + ((day - first).days + 0.5) * step, 2), day, kind, text)
             for number, (day, kind, text) in enumerate(sorted(changes, key=lambda change: change[0]), start=1)]
    height = int(axis_y + AXIS_HEIGHT + (MARK_ROW if marks else 0) + 4)
    series = {name for _, by_series in days for name in by_series}
    return Chart(WIDTH, height, LEFT, WIDTH - RIGHT, panels, _x_ticks([day for day, _ in days], step), axis_y,
                 marks, tuple(_ordered(dict.fromkeys(series))))


def _ordered(by_series: dict) -> list[str]:
    """Policy types in their usual order, any other series after them."""
    return [t for t in POLICY_TYPE_ORDER if t in by_series] + sorted(t for t in by_series if t not in POLICY_TYPE_ORDER)


def _x_ticks(days: list[date], step: float) -> list[Tick]:
    """Month starts over long ranges, else about eight evenly spaced days."""
    if len(days) > 92:
        return [Tick(round(LEFT + (n + 0.5) * step, 2), f"{day:%Y-%m}") for n, day in enumerate(days) if day.day == 1]
    every = max(1, math.ceil(len(days) / 8))
    return [Tick(round(LEFT + (n + 0.5) * step, 2), f"{day:%m-%d}") for n, day in enumerate(days) if n % every == 0]
