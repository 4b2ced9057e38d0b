"""Evidence values on the alert page: money grouped, percentages marked."""

import pytest

from coaching.templatetags.coaching_tags import evidence_label, evidence_value


@pytest.mark.parametrize(
    ("value", "key", "shown"),
    [
        ("28798.80", "bookings", "28,798.80"),
        ("156032.61", "quota", "156,032.61"),
        ("5000.00", "amount", "5,000.00"),
        ("18.5", "attainment", "18.5%"),
        ("37.0", "pace", "37.0%"),
        (None, "quota", "—"),
        ("Engaging", "stage", "Engaging"),
        ("14", "idle_days", "14"),
    ],
)
def test_evidence_value(value, key, shown):
    assert evidence_value(value, key) == shown


def test_evidence_label():
    assert evidence_label("attainment_to_pace") == "Attainment to pace"
