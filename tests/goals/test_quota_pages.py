"""The quota grid page, its copy button, and the CSV export and import pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from goals.grid import quota_grid
from goals.models import Quota
from goals.periods import quota_period_containing
from spm.models import AuditLog, Membership
from spm.tenancy import tenant_context
from tests.conftest import login
from tests.factories import MembershipFactory
from tests.goals.conftest import Q4_START, make_quota, make_time_off, set_dates

D = dt.date
GRID = "/o/acme/goals/quotas/"
Q1 = {"on": "2024-02-10", "metric": "bookings"}


def _key(owner) -> str:
    kind = "member" if isinstance(owner, Membership) else "team"
    return f"{kind}-{owner.public_id}"


def _quotas(org, period_start: dt.date | None = None) -> dict[str, Decimal]:
    """Return the amounts by member or team name, of one period if given."""
    with tenant_context(org):
        quotas = Quota.objects.select_related("member", "team")
        if period_start is not None:
            quotas = quotas.filter(period_start=period_start)
        return {str(quota.member or quota.team): quota.amount for quota in quotas}


@pytest.fixture
def admin_client(client, personas):
    return login(client, personas.admin)


def test_grid_lists_quota_carriers(admin_client, personas):
    response = admin_client.get(GRID, Q1)

    assert response.status_code == 200
    grid = response.context["grid"]
    assert grid.period.label == "FY2024 Q1"
    names = [row.name for row in grid.members]
    # Reps and managers by name. The admin has no quota, so is not listed.
    assert names == [
        "Max Manager",
        "Olga Other",
        "Remy Rep",
        "Rex Rep",
        "Rita Rep",
        "Rob Rep",
        "Vera VP",
    ]
    assert [row.name for row in grid.teams] == ["East", "West"]
    content = response.content.decode()
    assert "FY2024 Q1" in content
    assert "?on=2023-10-01&amp;metric=bookings" in content
    assert "?on=2024-04-01&amp;metric=bookings" in content


def test_admin_with_quota_listed(admin_client, personas):
    make_quota(personas.admin, "5000.00")

    response = admin_client.get(GRID, Q1)

    assert "Ada Admin" in [row.name for row in response.context["grid"].members]


def test_member_who_left_before_period_not_listed(admin_client, personas):
    set_dates(personas.rep4, end=D(2023, 12, 31))

    response = admin_client.get(GRID, Q1)

    assert "Rex Rep" not in [row.name for row in response.context["grid"].members]


def test_prorated_note(admin_client, personas):
    set_dates(personas.rep1, start=D(2024, 2, 15))
    make_quota(personas.rep1, "100000.00")
    make_time_off(personas.rep2, D(2024, 2, 5), D(2024, 2, 9))
    make_quota(personas.rep2, "100000.00")
    make_quota(personas.rep3, "100000.00")

    response = admin_client.get(GRID, Q1)

    rows = {row.name: row for row in response.context["grid"].members}
    assert rows["Rita Rep"].prorated_note == (
        "prorated: 50,549.45 of 100,000.00, joined 2024-02-15"
    )
    assert (
        rows["Rob Rep"].prorated_note == "prorated: 94,505.49 of 100,000.00, 5 days off"
    )
    assert rows["Remy Rep"].prorated_note == ""
    assert "prorated: 50,549.45 of 100,000.00, joined 2024-02-15" in (
        response.content.decode()
    )


def test_team_quota_beside_sum_of_reps(admin_client, personas):
    east = personas.rep1.team
    make_quota(personas.rep1, "100000.00")
    make_quota(personas.rep2, "90000.00")
    # The manager's quota is not a rep's, so it is not in the sum.
    make_quota(personas.manager, "50000.00")
    make_quota(east, "250000.00")

    response = admin_client.get(GRID, Q1)

    team = {row.name: row for row in response.context["grid"].teams}["East"]
    assert team.text == "250000.00"
    assert team.reps_sum_display == "190,000.00"
    assert team.reps_counted == 2


def test_save_grid(admin_client, personas):
    make_quota(personas.rep2, "90000.00")
    data = {
        **Q1,
        _key(personas.rep1): "100,000",
        _key(personas.rep2): "",
        f"shown-{_key(personas.rep2)}": "90000.00",
        _key(personas.rep1.team): "250000.50",
    }

    response = admin_client.post(GRID, data)

    assert response.status_code == 302
    assert response.url == "/o/acme/goals/quotas/?on=2024-01-01&metric=bookings"
    assert _quotas(personas.org) == {
        "Rita Rep": Decimal("100000.00"),
        "East": Decimal("250000.50"),
    }


def test_unchanged_cell_keeps_concurrent_save(admin_client, personas):
    # The page showed 90,000, and someone saved 95,000 since. Posting the cell
    # unchanged must not put 90,000 back.
    make_quota(personas.rep2, "95000.00")
    data = {
        **Q1,
        _key(personas.rep2): "90000.00",
        f"shown-{_key(personas.rep2)}": "90000.00",
    }

    admin_client.post(GRID, data)

    assert _quotas(personas.org) == {"Rob Rep": Decimal("95000.00")}


def test_stale_edit_is_refused(admin_client, personas):
    # The page showed 90,000, someone saved 95,000 since, and this admin typed
    # 111. Saving 111 would silently undo the other save, so nothing is saved.
    make_quota(personas.rep2, "95000.00")
    data = {
        **Q1,
        _key(personas.rep2): "111",
        f"shown-{_key(personas.rep2)}": "90000.00",
    }

    response = admin_client.post(GRID, data)

    assert response.status_code == 400
    assert "someone else changed this quota to 95000.00" in response.content.decode()
    assert _quotas(personas.org) == {"Rob Rep": Decimal("95000.00")}


def test_bad_cell_saves_nothing(admin_client, personas):
    make_quota(personas.rep2, "90000.00")
    data = {
        **Q1,
        _key(personas.rep1): "100000",
        _key(personas.rep2): "-5",
        _key(personas.rep3): "12.345",
        _key(personas.rep4): "lots",
    }

    response = admin_client.post(GRID, data)

    assert response.status_code == 400
    content = response.content.decode()
    assert "Nothing was saved." in content
    assert "Rob Rep: “-5” must not be negative." in content
    assert "Remy Rep: “12.345” has more than 2 decimal places." in content
    assert "Rex Rep: “lots” is not a number" in content
    # The posted values stay in the inputs.
    assert 'value="12.345"' in content
    assert _quotas(personas.org) == {"Rob Rep": Decimal("90000.00")}
    with tenant_context(personas.org):
        assert not AuditLog.objects.filter(action__startswith="quota.").exists()


def test_deal_count_grid_takes_whole_numbers(admin_client, personas):
    data = {"on": "2024-01-01", "metric": "deal_count", _key(personas.rep1): "2.5"}

    response = admin_client.post(GRID, data)

    assert response.status_code == 400
    assert "must be a whole number of deals" in response.content.decode()
    data[_key(personas.rep1)] = "12"
    assert admin_client.post(GRID, data).status_code == 302
    assert _quotas(personas.org) == {"Rita Rep": Decimal("12")}


def test_invalid_period_is_400(admin_client, personas):
    response = admin_client.get(GRID, {"on": "0001-01-01"})

    assert response.status_code == 400
    assert "out of range" in response.content.decode()


def test_copy_button(admin_client, personas):
    make_quota(personas.rep1, "80000.00", Q4_START, D(2024, 1, 1))
    make_quota(personas.rep2, "70000.00", Q4_START, D(2024, 1, 1))
    make_quota(personas.rep2, "75000.00")

    response = admin_client.post("/o/acme/goals/quotas/copy/", Q1, follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert messages == ["Copied 1 quota from FY2023 Q4; kept 1 already set."]
    # Rita's Q4 quota is copied, Rob's own Q1 quota is kept.
    assert _quotas(personas.org, D(2024, 1, 1)) == {
        "Rita Rep": Decimal("80000.00"),
        "Rob Rep": Decimal("75000.00"),
    }


def test_export_download(admin_client, personas):
    make_quota(personas.rep1, "100000.00")

    response = admin_client.get("/o/acme/goals/quotas/export.csv", Q1)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        'filename="quotas-bookings-2024-01-01.csv"' in response["Content-Disposition"]
    )
    assert "rita.rep@acme.test,Rita Rep,,2024-01-01,bookings,100000.00,USD" in (
        response.content.decode()
    )


def test_import_page_success_and_errors(admin_client, personas):
    url = reverse("goals:quotas-import", kwargs={"org_slug": "acme"})
    good = b"email,period_start,amount\nrita.rep@acme.test,2024-01-01,1000\n"
    bad = b"email,period_start,amount\nnobody@acme.test,2024-01-01,=1+1\n"

    response = admin_client.post(
        url, {"file": SimpleUploadedFile("bad.csv", bad)}, follow=False
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert "bad.csv was not imported" in content
    assert "no member has this email address" in content
    errors = admin_client.get(url + "errors.csv")
    assert errors.status_code == 200
    assert errors.content.decode().splitlines() == [
        "file,line,column,value,message",
        "bad.csv,2,email,nobody@acme.test,no member has this email address",
        # The value a spreadsheet would run as a formula is quoted.
        "bad.csv,2,amount,'=1+1,\"is not a number (write it like 125000 or "
        '125,000.50)"',
    ]

    response = admin_client.post(
        url, {"file": SimpleUploadedFile("good.csv", good)}, follow=True
    )

    messages = [str(message) for message in response.context["messages"]]
    assert messages == [
        "good.csv imported: 1 added, 0 changed, 0 unchanged, 0 with no amount skipped."
    ]
    assert _quotas(personas.org) == {"Rita Rep": Decimal("1000.00")}


@pytest.mark.parametrize("persona", ["rep1", "manager", "vp"])
@pytest.mark.parametrize(
    "url", [GRID, "/o/acme/goals/quotas/copy/", "/o/acme/goals/quotas/import/"]
)
def test_non_admins_cannot_edit_quotas(client, personas, persona, url):
    login(client, getattr(personas, persona))
    data = {**Q1, _key(personas.rep1): "1"}

    assert client.get(url, Q1).status_code == 404
    assert client.post(url, data).status_code == 404
    assert not _quotas(personas.org)


def _add_reps(personas, count: int, first: int = 0) -> None:
    """Add reps who joined in the period, each with a quota and time off."""
    for number in range(first, first + count):
        rep = MembershipFactory(
            organization=personas.org,
            user=None,
            display_name=f"Load Rep {number:03d}",
            role=Membership.Role.REP,
            team=personas.rep1.team,
            start_date=D(2024, 2, 1),
        )
        make_quota(rep, "1000.00")
        make_time_off(rep, D(2024, 2, 5), D(2024, 2, 6))


def _grid_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(GRID, Q1)
    assert response.status_code == 200
    return len(queries)


def test_grid_queries_do_not_grow_with_reps(admin_client, personas):
    _add_reps(personas, 3)
    few = _grid_queries(admin_client)
    _add_reps(personas, 30, first=3)

    assert _grid_queries(admin_client) == few


def test_grid_read_queries(in_org, personas, django_assert_num_queries):
    _add_reps(personas, 20)
    period = quota_period_containing(personas.org, D(2024, 1, 1))

    # Members, stored quotas, prorated quotas and their time off, teams.
    with django_assert_num_queries(5):
        grid = quota_grid(personas.org, period, "bookings")

    assert len(grid.members) == 27


def test_grid_page_query_count(admin_client, personas, django_assert_max_num_queries):
    _add_reps(personas, 20)
    # Session, user and membership (3), the grid (5), and the shared parts
    # of every page, such as the navigation's counts.
    with django_assert_max_num_queries(12):
        response = admin_client.get(GRID, Q1)
    assert response.status_code == 200


def test_import_page_size_limit(admin_client, personas, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 40
    content = b"email,period_start,amount\n" + b"rita.rep@acme.test,2024-01-01,1\n" * 3
    url = reverse("goals:quotas-import", kwargs={"org_slug": "acme"})

    response = admin_client.post(url, {"file": SimpleUploadedFile("big.csv", content)})

    assert response.status_code == 400
    assert "larger than the limit of 40 bytes" in response.content.decode()
    assert not _quotas(personas.org)
