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
from measurement.stage_conversion import StageConversion

ACCENT = "#2f5bea"
SECOND = "#9db4f5"
WON_COLOR = "#137a4b"
LOST_COLOR = "#b42318"
PACE_COLOR = "#1d2433"
NO_QUOTA = "no quota"
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
    # Leading columns of the table that hold labels rather than numbers.
    label_columns: int = 1

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


def _quota_rows(rows: list[RepRow]) -> list[RepRow]:
    return [row for row in rows if row.progress and row.progress.quota]


def attainment_vs_pace(rows: list[RepRow]) -> Chart:
    """Plot attainment bars of reps with a quota and a pace marker on each.

    Pace is the share of the period elapsed, the same for every rep, so a
    bar that ends left of its marker is behind pace.
    """
    plotted = [row for row in _quota_rows(rows) if row.progress.attainment is not None]
    names = [_plain(row.member.display_name) for row in plotted]
    figure = go.Figure(
        [
            go.Bar(
                name="Attainment",
                x=[row.progress.attainment for row in plotted],
                y=names,
                orientation="h",
                marker_color=ACCENT,
            ),
            go.Scatter(
                name="Pace",
                x=[row.progress.pace for row in plotted],
                y=names,
                mode="markers",
                marker={
                    "symbol": "line-ns-open",
                    "size": 22,
                    "color": PACE_COLOR,
                    "line": {"width": 3, "color": PACE_COLOR},
                },
            ),
        ],
        layout=_layout(
            height=max(240, 80 + ROW_HEIGHT * len(plotted)),
            xaxis={"ticksuffix": "%", "rangemode": "tozero"},
            yaxis={**CATEGORY_AXIS, "autorange": "reversed"},
            legend={"orientation": "h", "y": -0.15},
        ),
    )
    table = [_attainment_table_row(row) for row in rows]
    return Chart(
        "chart-attainment-vs-pace",
        "Attainment vs pace",
        _to_dict(figure),
        ["Rep", "Quota", "Bookings", "Attainment", "Pace", "Attainment to pace"],
        table,
        has_amounts=bool(plotted),
    )


def _attainment_table_row(row: RepRow) -> list[str]:
    progress = row.progress
    if progress is None or progress.quota is None:
        pace = formatting.percent(progress.pace) if progress else formatting.NO_DATA
        bookings = formatting.money(row.card.bookings)
        return [row.member.display_name, NO_QUOTA, bookings, NO_QUOTA, pace, NO_QUOTA]
    return [
        row.member.display_name,
        formatting.money(progress.quota.amount),
        formatting.money(progress.bookings),
        formatting.percent(progress.attainment),
        formatting.percent(progress.pace),
        formatting.percent(progress.attainment_to_pace),
    ]


def coverage_by_rep(rows: list[RepRow]) -> Chart:
    """Plot each rep's pipeline coverage with a marker at their target.

    Reps whose quota is reached, or who have no quota, have no coverage to
    plot, so only the table lists them, with their status.
    """
    plotted = [
        row
        for row in _quota_rows(rows)
        if row.progress.coverage.ratio is not None
        and row.progress.coverage_status != "met"
    ]
    names = [_plain(row.member.display_name) for row in plotted]
    targets = [row.progress.coverage_target.ratio for row in plotted]
    figure = go.Figure(
        [
            go.Bar(
                name="Coverage",
                x=[row.progress.coverage.ratio for row in plotted],
                y=names,
                orientation="h",
                marker_color=ACCENT,
            ),
            go.Scatter(
                name="Target",
                x=targets,
                y=names,
                mode="markers",
                marker={"symbol": "diamond", "size": 12, "color": PACE_COLOR},
            ),
        ],
        layout=_layout(
            height=max(240, 80 + ROW_HEIGHT * len(plotted)),
            xaxis={"ticksuffix": "x", "rangemode": "tozero"},
            yaxis={**CATEGORY_AXIS, "autorange": "reversed"},
            legend={"orientation": "h", "y": -0.15},
        ),
    )
    table = [_coverage_table_row(row) for row in rows]
    return Chart(
        "chart-coverage-by-rep",
        "Pipeline coverage vs target",
        _to_dict(figure),
        ["Rep", "In-period pipeline", "Coverage", "Target", "Target from", "Status"],
        table,
        has_amounts=bool(plotted),
    )


def _coverage_table_row(row: RepRow) -> list[str]:
    progress = row.progress
    if progress is None or progress.quota is None:
        return [row.member.display_name, NO_QUOTA, NO_QUOTA, NO_QUOTA, "", NO_QUOTA]
    target = progress.coverage_target
    met = progress.coverage_status == "met"
    return [
        row.member.display_name,
        formatting.money(progress.in_period_pipeline),
        "met" if met else formatting.multiple(progress.coverage.ratio),
        formatting.multiple(target.ratio),
        formatting.target_source(target.source),
        progress.coverage_status,
    ]


def conversion_funnel_by_rep(conversion: StageConversion, rows: list[RepRow]) -> Chart:
    """Plot each rep's stage conversion across the measured pipeline's open stages.

    Reps whose deals entered none of the stages have no bar, and the table
    lists them with "no data" in every stage.
    """
    stages = [_plain(name) for name in conversion.stages]
    member_rates = [(row, conversion.of_member(row.member.pk).stages) for row in rows]
    plotted = [
        (row, rates)
        for row, rates in member_rates
        if any(rate.entered for rate in rates)
    ]
    figure = go.Figure(
        [
            go.Bar(
                name=_plain(row.member.display_name),
                x=stages,
                y=[rate.rate for rate in rates],
            )
            for row, rates in plotted
        ],
        layout=_layout(
            barmode="group",
            xaxis=CATEGORY_AXIS,
            yaxis={"range": [0, 100], "ticksuffix": "%"},
            margin={"l": 50, "r": 20, "t": 20, "b": 60},
            legend={"orientation": "h", "y": -0.2},
        ),
    )
    table = [
        [
            row.member.display_name,
            rate.stage,
            str(rate.entered),
            str(rate.progressed),
            formatting.percent(rate.rate),
        ]
        for row, rates in member_rates
        for rate in rates
    ]
    title = "Conversion funnel by rep"
    if conversion.pipeline is not None:
        title = f"{title}: {conversion.pipeline}"
    return Chart(
        "chart-conversion-funnel-by-rep",
        title,
        _to_dict(figure),
        ["Rep", "Stage", "Entered", "Progressed", "Conversion"],
        table,
        has_amounts=bool(plotted),
        label_columns=2,
    )
