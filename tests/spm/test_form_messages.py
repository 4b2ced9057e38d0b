"""Form errors name the field and the value as typed, and never echo a secret."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import reverse

from followups.forms import SequenceForm
from goals.forms import BenchmarkForm, TimeOffForm
from integrations.forms import (
    ConnectionSettingsForm,
    HubSpotConnectForm,
    PipedriveConnectForm,
    SalesforceConnectForm,
    WebhookSettingsForm,
)
from integrations.models import CrmConnection
from notifications.forms import PreferencesForm
from notifications.selectors import member_channel_settings
from spm.form_errors import ValueErrorMessagesMixin
from spm.forms import OrganizationSettingsForm
from spm.models import Membership
from spm.tenancy import tenant_context
from tests.conftest import login

URL_HINT = "is not a valid URL (use a full address, like https://example.com)."


def _page(name: str, app: str) -> str:
    return reverse(f"{app}:{name}", kwargs={"org_slug": "acme"})


# CRM connection forms


@pytest.mark.parametrize(
    ("form_class", "expected"),
    [
        (
            HubSpotConnectForm,
            {
                "name": "Name is required.",
                "base_url": "API address is required.",
                "access_token": "Private app access token is required.",
                "api_tier": "HubSpot subscription is required.",
            },
        ),
        (
            SalesforceConnectForm,
            {
                "name": "Name is required.",
                "base_url": "Login or My Domain address is required.",
                "client_id": "Consumer key is required.",
                "client_secret": "Consumer secret is required.",
                "refresh_token": "Refresh token is required.",
            },
        ),
        (
            PipedriveConnectForm,
            {
                "name": "Name is required.",
                "base_url": "Company API address is required.",
                "api_token": "API token is required.",
            },
        ),
    ],
)
def test_connect_form_names_missing_fields(personas, form_class, expected):
    with tenant_context(personas.org):
        form = form_class({})

        assert not form.is_valid()

    for name, message in expected.items():
        assert form.errors[name] == [message]


@pytest.mark.parametrize(
    ("form_class", "label"),
    [
        (HubSpotConnectForm, "API address"),
        (SalesforceConnectForm, "Login or My Domain address"),
        (PipedriveConnectForm, "Company API address"),
    ],
)
def test_connect_form_names_invalid_url(personas, form_class, label):
    with tenant_context(personas.org):
        form = form_class({"name": "CRM", "base_url": "ftp://x"})

        assert not form.is_valid()

    assert form.errors["base_url"] == [f'{label}: "ftp://x" {URL_HINT}']


def test_connect_page_names_url_not_token(client, personas):
    login(client, personas.admin)
    token = "pat-eu1-0a1b2c3d"

    response = client.post(
        _page("connect-hubspot", "integrations"),
        {
            "name": "HubSpot",
            "base_url": "ftp://x",
            "access_token": token,
            "api_tier": "starter",
        },
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert f"API address: &quot;ftp://x&quot; {URL_HINT}" in content
    assert "Enter a valid URL." not in content
    assert token not in content


def test_connection_settings_names_fields(personas):
    data = {"name": "", "base_url": "ftp://x", "api_tier": "gold", "status": ""}
    form = ConnectionSettingsForm(data)

    assert not form.is_valid()
    assert form.errors["name"] == ["Name is required."]
    assert form.errors["base_url"] == [f'API address: "ftp://x" {URL_HINT}']
    assert form.errors["api_tier"] == [
        'HubSpot subscription: "gold" is not one of the available choices.'
    ]
    assert form.errors["status"] == ["Status is required."]


@pytest.mark.parametrize(
    ("provider", "data", "field", "expected"),
    [
        ("hubspot", {}, "secret", "App client secret is required."),
        ("pipedrive", {"username": ""}, "username", "HTTP auth user name is required."),
        (
            "salesforce",
            {"salesforce_organization_id": "00D" + "x" * 16},
            "salesforce_organization_id",
            'Salesforce organization ID: "00Dxxxxxxxxxxxxxxxx" has 19 characters, '
            "more than the maximum of 18.",
        ),
    ],
)
def test_webhook_settings_names_field(provider, data, field, expected):
    connection = CrmConnection(provider=provider)
    form = WebhookSettingsForm(data, connection=connection)

    assert not form.is_valid()
    assert form.errors[field] == [expected]


class _TokenForm(ValueErrorMessagesMixin, forms.Form):
    token = forms.CharField(max_length=5, widget=forms.PasswordInput)
    callback = forms.URLField(assume_scheme="https", widget=forms.PasswordInput)


def test_secret_value_is_never_shown():
    form = _TokenForm({"token": "hunter22", "callback": "not-a-url"})

    assert not form.is_valid()
    assert form.errors["token"] == [
        "Token has 8 characters, more than the maximum of 5."
    ]
    assert form.errors["callback"] == ["Callback is invalid."]
    assert "hunter22" not in str(form.errors)
    assert "not-a-url" not in str(form.errors)


# Organisation settings


def _settings_form(org, currency: str) -> OrganizationSettingsForm:
    data = {
        "name": "Acme",
        "time_zone": "UTC",
        "currency": currency,
        "fiscal_year_start_month": "1",
    }
    return OrganizationSettingsForm(data, instance=org)


def test_currency_too_long_names_value(personas):
    form = _settings_form(personas.org, "XXX1")

    assert not form.is_valid()
    assert form.errors["currency"] == [
        'Currency: "XXX1" has 4 characters, more than the maximum of 3.'
    ]


def test_currency_outside_iso_4217_is_rejected(personas):
    form = _settings_form(personas.org, "ZZZ")

    assert not form.is_valid()
    assert form.errors["currency"] == [
        'Currency: "ZZZ" is not a currency code (use an ISO 4217 code, like USD).'
    ]


@pytest.mark.parametrize(("typed", "stored"), [("eur", "EUR"), ("CHF", "CHF")])
def test_iso_4217_currency_is_accepted(personas, typed, stored):
    form = _settings_form(personas.org, typed)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["currency"] == stored


# Follow-up sequence filter


def _sequence_form(org, **fields) -> SequenceForm:
    data = {"name": "Nudge", "trigger": "manual", "is_active": "on", **fields}
    with tenant_context(org):
        form = SequenceForm(data)
        form.is_valid()
    return form


def test_amount_bounds_name_field_and_value(personas):
    form = _sequence_form(personas.org, amount_min="5000", amount_max="100")

    assert form.errors["amount_max"] == [
        'Deal amount up to: "100" is less than Deal amount from (5000).'
    ]


def test_amount_below_zero_shows_typed_value(personas):
    form = _sequence_form(personas.org, amount_min="-1e3")

    assert form.errors["amount_min"] == [
        'Deal amount from: "-1e3" is below the minimum of 0.'
    ]


def test_multiple_choice_names_rejected_item(personas):
    with tenant_context(personas.org):
        rep = str(Membership.objects.get(pk=personas.rep1.pk).public_id)
    form = _sequence_form(personas.org, owners=[rep, "abc"])

    assert form.errors["owners"] == [
        'Owners: "abc" is not one of the available choices.'
    ]


# Period and quota selectors


def test_team_page_names_invalid_date(client, personas):
    login(client, personas.manager)

    response = client.get(_page("team", "measurement"), {"on": "2026-02-30"})

    content = response.content.decode()
    assert response.status_code == 400
    expected = (
        "Containing: &quot;2026-02-30&quot; is not a valid date (use YYYY-MM-DD)."
    )
    assert expected in content
    assert "Containing: Containing" not in content


def test_team_page_shows_year_one_as_typed(client, personas):
    login(client, personas.manager)

    response = client.get(
        _page("team", "measurement"),
        {"kind": "custom", "start": "0001-01-01", "end": "2024-01-01"},
    )

    content = response.content.decode()
    assert response.status_code == 400
    assert (
        "Start: &quot;0001-01-01&quot; is out of range (use a date from "
        "1900-01-01 to 2999-12-31)."
    ) in content
    assert "Start: Start" not in content


def test_quota_page_names_metric_once(admin_client_for, personas):
    response = admin_client_for.get(_page("quotas", "goals"), {"metric": "zzz"})

    content = response.content.decode()
    assert response.status_code == 400
    assert "Metric: &quot;zzz&quot; is not one of the available choices." in content
    assert "Metric: Metric" not in content


def test_quota_page_out_of_range_names_field(admin_client_for, personas):
    response = admin_client_for.get(_page("quotas", "goals"), {"on": "0001-01-01"})

    content = response.content.decode()
    assert response.status_code == 400
    assert (
        "Period containing: &quot;0001-01-01&quot; is out of range (use a date "
        "from 1900-01-01 to 2999-12-31)."
    ) in content


# Goals forms


@pytest.mark.parametrize("member", ["abc", "00000000-0000-0000-0000-000000000000"])
def test_time_off_filter_names_member(admin_client_for, member):
    response = admin_client_for.get(_page("time-off", "goals"), {"member": member})

    form = response.context["filter_form"]
    assert form.errors["member"] == [
        f'Member: "{member}" is not one of the available choices.'
    ]
    assert "is not a valid UUID" not in response.content.decode()


def test_time_off_year_one_is_shown_as_typed(personas):
    data = {
        "member": str(personas.rep1.public_id),
        "kind": "vacation",
        "start_date": "0001-01-01",
        "end_date": "2024-03-08",
    }
    with tenant_context(personas.org):
        form = TimeOffForm(data, members=Membership.objects.all())

        assert not form.is_valid()

    assert form.errors["start_date"] == [
        'First day: "0001-01-01" is out of range (use a date from 1900-01-01 '
        "to 2999-12-31)."
    ]


def test_benchmark_exponent_is_shown_as_typed(personas):
    data = {
        "activity_type": "call",
        "target": "1e9",
        "unit": "day",
        "applies_to": "everyone",
    }
    with tenant_context(personas.org):
        form = BenchmarkForm(data)

        assert not form.is_valid()

    # 1e9 is a 1 and nine zeros, so ten digits where the field allows eight.
    assert form.errors["target"] == ['Target: "1e9" has more than 8 digits.']


# Notification preferences


def test_preferences_name_time_zone(personas):
    data = {"time_zone": "Mars/Base", "quiet_start": "", "quiet_end": ""}
    form = PreferencesForm(data, settings=[], organization_time_zone="UTC")

    assert not form.is_valid()
    assert form.errors["time_zone"] == [
        'Time zone: "Mars/Base" is not one of the available choices.'
    ]


def test_preferences_name_email_channel(personas):
    with tenant_context(personas.org):
        settings = member_channel_settings(personas.rep1)
    data = {"time_zone": "", "lead-assigned-email": "sometimes"}
    form = PreferencesForm(data, settings=settings, organization_time_zone="UTC")

    assert not form.is_valid()
    assert form.errors["lead-assigned-email"] == [
        'Lead assigned to you, email: "sometimes" is not one of the available choices.'
    ]


@pytest.fixture
def admin_client_for(client, personas):
    return login(client, personas.admin)
