"""Plotly figures for the dashboards, each with the table of its numbers.

Figures are built here with plotly.py and handed to the page as JSON, where
static/js/charts.js draws them with plotly.js served from static files.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from decimal import Decimal

import plotly.graph_objects as go

from measurement import formatting
from measurement.selectors import RepRow, Scorecard, StageTotals

ACCENT = "#2f5bea"
SECOND = "#9db4f5"
WON_COLOR = "#137a4b"
LOST_COLOR = "#b42318"
# Pixels per bar in horizontal bar charts, so long rep lists stay legible.
ROW_HEIGHT = 26
# Labels are categories, so plotly.js does not read a rep named "2024" or a
# month label such as "Mar 2024" as a number or a date.
CATEGORY_AXIS = {"type": "category"}


@dataclass
class Chart:
    """A figure as plotly JSON, and its numbers as display strings."""

    element_id: str
    title: str
    figure: dict
    columns: list[str]
    rows: list[list[str]]
    # False when every plotted amount is zero. plotly would draw an empty axis
    # from -1 to 1, so the page shows "no data" and keeps the table.
    has_amounts: bool = True

    @property
    def data_element_id(self) -> str:
        return f"{self.element_id}-data"

    @property
    def is_empty(self) -> bool:
        return not self.rows or not self.has_amounts


def _layout(height: int = 340, **extra) -> dict:
    # The "none" template keeps each figure's JSON small, because the default
    # template adds several kilobytes of styling to every figure. The page
    # prints each chart's title above it, so the figure has none.
    return {
        "template": "none",
        "height": height,
        "margin": {"l": 140, "r": 20, "t": 20, "b": 40},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        **extra,
    }


def _to_dict(figure: go.Figure) -> dict:
    return json.loads(figure.to_json())


def _plain(text: str) -> str:
    """Escape a label for plotly, which reads <b>, <a href> and other tags in text.

    Names come from imported data, so a tag in one must show as typed.
    """
    return html.escape(text, quote=False)


def _month_label(month: dt.date) -> str:
    return month.strftime("%b %Y")


def bookings_by_rep(rows: list[RepRow]) -> Chart:
    names = [row.member.display_name for row in rows]
    values = [row.card.bookings for row in rows]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=[_plain(name) for name in names],
            orientation="h",
            marker_color=ACCENT,
        ),
        layout=_layout(
            height=max(240, 80 + ROW_HEIGHT * len(rows)),
            yaxis={**CATEGORY_AXIS, "autorange": "reversed"},
        ),
    )
    table = [
        [name, formatting.money(value)]
        for name, value in zip(names, values, strict=True)
    ]
    return Chart(
        "chart-bookings-by-rep",
        "Bookings by rep",
        _to_dict(figure),
        ["Rep", "Bookings"],
        table,
        has_amounts=any(values),
    )


def win_rate_by_rep(rows: list[RepRow]) -> Chart:
    """Plot reps with closed deals. The table also lists reps with no data."""
    measured = [row for row in rows if row.card.win_rate is not None]
    figure = go.Figure(
        go.Bar(
            x=[row.card.win_rate for row in measured],
            y=[_plain(row.member.display_name) for row in measured],
            orientation="h",
            marker_color=WON_COLOR,
        ),
        layout=_layout(
            height=max(240, 80 + ROW_HEIGHT * len(measured)),
            xaxis={"range": [0, 100], "ticksuffix": "%"},
            yaxis={**CATEGORY_AXIS, "autorange": "reversed"},
        ),
    )
    table = [
        [
            row.member.display_name,
            formatting.percent(row.card.win_rate),
            str(row.card.won),
            str(row.card.lost),
        ]
        for row in rows
    ]
    return Chart(
        "chart-win-rate-by-rep",
        "Win rate by rep",
        _to_dict(figure),
        ["Rep", "Win rate", "Won", "Lost"],
        table,
    )


def pipeline_by_stage(stages: list[StageTotals]) -> Chart:
    labels = [_plain(_stage_label(stage, stages)) for stage in stages]
    figure = go.Figure(
        [
            go.Bar(
                name="Value", x=labels, y=[s.value for s in stages], marker_color=ACCENT
            ),
            go.Bar(
                name="Weighted",
                x=labels,
                y=[s.weighted for s in stages],
                marker_color=SECOND,
            ),
        ],
        layout=_layout(
            barmode="group",
            xaxis=CATEGORY_AXIS,
            margin={"l": 70, "r": 20, "t": 20, "b": 60},
        ),
    )
    table = [
        [
            label,
            str(stage.deals),
            formatting.money(stage.value),
            formatting.money(stage.weighted),
        ]
        for label, stage in zip(labels, stages, strict=True)
    ]
    return Chart(
        "chart-pipeline-by-stage",
        "Open pipeline by stage",
        _to_dict(figure),
        ["Stage", "Open deals", "Value", "Weighted"],
        table,
        has_amounts=any(stage.value for stage in stages),
    )


def _stage_label(stage: StageTotals, stages: list[StageTotals]) -> str:
    """Name the stage, prefixed by its pipeline when there are several."""
    if len({s.pipeline for s in stages}) > 1:
        return f"{stage.pipeline}: {stage.stage}"
    return stage.stage


def bookings_by_month(months: list[tuple[dt.date, Decimal]]) -> Chart:
    labels = [_month_label(month) for month, _value in months]
    values = [value for _month, value in months]
    figure = go.Figure(
        go.Bar(x=labels, y=values, marker_color=ACCENT),
        layout=_layout(
            xaxis=CATEGORY_AXIS, margin={"l": 70, "r": 20, "t": 20, "b": 60}
        ),
    )
    table = [
        [label, formatting.money(value)]
        for label, value in zip(labels, values, strict=True)
    ]
    return Chart(
        "chart-bookings-by-month",
        "Bookings by month",
        _to_dict(figure),
        ["Month", "Bookings"],
        table,
        has_amounts=any(values),
    )


def trend_bookings(months: list[tuple[dt.date, Scorecard]]) -> Chart:
    return bookings_by_month([(month, card.bookings) for month, card in months])


def trend_won_lost(months: list[tuple[dt.date, Scorecard]]) -> Chart:
    labels = [_month_label(month) for month, _card in months]
    figure = go.Figure(
        [
            go.Bar(
                name="Won",
                x=labels,
                y=[card.won for _m, card in months],
                marker_color=WON_COLOR,
            ),
            go.Bar(
                name="Lost",
                x=labels,
                y=[card.lost for _m, card in months],
                marker_color=LOST_COLOR,
            ),
        ],
        layout=_layout(
            barmode="group",
            xaxis=CATEGORY_AXIS,
            margin={"l": 50, "r": 20, "t": 20, "b": 60},
        ),
    )
    table = [
        [label, str(card.won), str(card.lost), formatting.percent(card.win_rate)]
        for label, (_month, card) in zip(labels, months, strict=True)
    ]
    return Chart(
        "chart-won-lost-by-month",
        "Won and lost deals by month",
        _to_dict(figure),
        ["Month", "Won", "Lost", "Win rate"],
        table,
    )
