"""Chart labels come from imported data and must show as typed."""

from decimal import Decimal

from measurement.charts import bookings_by_rep, win_rate_by_rep
from measurement.selectors import RepRow, Scorecard
from spm.models import Membership

NAME = '<b>Bold</b> <a href="https://example.test/">Rep</a>'
ESCAPED = '&lt;b&gt;Bold&lt;/b&gt; &lt;a href="https://example.test/"&gt;Rep&lt;/a&gt;'


def _row() -> RepRow:
    return RepRow(Membership(display_name=NAME), Scorecard(won=1, lost=1))


def test_bookings_chart_escapes_rep_names():
    chart = bookings_by_rep([_row()])
    assert chart.figure["data"][0]["y"] == [ESCAPED]
    # The table beside the chart is escaped by the template, so it keeps the name.
    assert chart.rows[0][0] == NAME


def test_win_rate_chart_escapes_rep_names():
    chart = win_rate_by_rep([_row()])
    assert chart.figure["data"][0]["y"] == [ESCAPED]


def test_zero_bookings_chart_is_empty():
    chart = bookings_by_rep([_row()])
    assert chart.is_empty
    assert chart.rows == [[NAME, "0.00"]]


def test_bookings_chart_with_amounts_is_drawn():
    row = RepRow(Membership(display_name="Rita"), Scorecard(bookings=Decimal("5.00")))
    assert not bookings_by_rep([row]).is_empty
