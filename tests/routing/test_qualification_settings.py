"""The qualification settings form: thresholds, duplicate window, competitors."""

from __future__ import annotations

import pytest

from routing.models import QualificationSettings
from spm.models import AuditLog
from tests.conftest import login

URL = "/o/acme/leads/scoring/settings/"


def _data(**values) -> dict:
    return {
        "mql_threshold": "40",
        "sql_threshold": "70",
        "duplicate_window_days": "30",
        "competitor_domains": "",
        **values,
    }


def test_settings_saved_and_audited(client, personas):
    login(client, personas.admin)

    response = client.post(
        URL, _data(competitor_domains="Rival.com, www.other.io\nrival.com")
    )

    assert response.status_code == 302
    saved = QualificationSettings.unscoped.get(organization=personas.org)
    assert (saved.mql_threshold, saved.sql_threshold) == (40, 70)
    assert saved.duplicate_window_days == 30
    assert saved.competitor_domains == ["rival.com", "other.io"]
    entry = AuditLog.unscoped.get(action="qualification_settings.update")
    assert entry.old["mql_threshold"] == 50
    assert entry.new["competitor_domains"] == ["rival.com", "other.io"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"mql_threshold": "80", "sql_threshold": "60"},
            "The sales-qualified score (60) must be at least the "
            "marketing-qualified score (80).",
        ),
        (
            {"competitor_domains": "rival"},
            "&#x27;rival&#x27; is not a domain name. Write it like rival.com.",
        ),
        ({"duplicate_window_days": "-1"}, "greater than or equal to 0"),
    ],
)
def test_invalid_settings_rejected(client, personas, values, message):
    login(client, personas.admin)

    response = client.post(URL, _data(**values))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not QualificationSettings.unscoped.filter(organization=personas.org).exists()


def test_scoring_page_shows_current_settings(client, personas):
    login(client, personas.admin)
    client.post(URL, _data(competitor_domains="rival.com"))

    html = client.get("/o/acme/leads/scoring/").content.decode()

    assert 'name="mql_threshold" value="40"' in html
    assert "rival.com</textarea>" in html
