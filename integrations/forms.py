"""Forms of the CRM integration pages.

Token fields never render their value back, so a form shown again after an
error does not put the token into the page, and their error messages leave
the value out.
"""

from __future__ import annotations

import re

from django import forms

from integrations.connectors import base
from integrations.connectors.pipedrive import OAUTH_TOKEN_URL as PIPEDRIVE_TOKEN_URL
from integrations.models import ApiTier, CrmConnection, FieldMapping
from notifications.addresses import UnsafeURL, url_check
from notifications.outbound import allow_private_addresses
from spm.form_errors import ValueErrorMessagesMixin

HUBSPOT_API_URL = "https://api.hubapi.com"
# The authentication methods of a HubSpot or Pipedrive connection: a token the
# admin pastes, or OAuth 2 (an app's client ID and secret and a refresh token).
AUTH_TOKEN = "token"
AUTH_OAUTH = "oauth"
AUTH_METHODS = (AUTH_TOKEN, AUTH_OAUTH)
# The fields each method needs, by provider. The connect forms drop the others.
TOKEN_FIELDS = {
    "hubspot": ("access_token",),
    "pipedrive": ("api_token",),
}
OAUTH_FIELDS = {
    "hubspot": ("client_id", "client_secret", "refresh_token"),
    "pipedrive": ("client_id", "client_secret", "refresh_token", "token_url"),
}
SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
# A Salesforce organisation id: the 15-character form or the 18-character
# form with its checksum suffix, both starting with the key prefix 00D.
SALESFORCE_ORG_ID = re.compile(r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")
# Pipedrive's HTTP auth user of a webhook: printable, no colon, since Basic
# credentials are "user:password".
WEBHOOK_USERNAME = re.compile(r"^[^\s:]{1,100}$")
# The names a mapping may give, by provider, with the rule its error states.
# HubSpot reads a property's internal name, Salesforce a field's API name or
# a relationship path (Account.Industry), and Pipedrive a deal field's key
# or its name as shown in Pipedrive, which may contain spaces.
PROPERTY_NAMES = {
    CrmConnection.Provider.HUBSPOT: (
        re.compile(r"[A-Za-z0-9_]+"),
        "use the internal name, made of letters, digits and underscores",
    ),
    CrmConnection.Provider.SALESFORCE: (
        re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*"),
        "use the field's API name, or a path such as Account.Industry",
    ),
    CrmConnection.Provider.PIPEDRIVE: (
        re.compile(r"[^\x00-\x1f\x7f]+"),
        "use the field's key or its name, without control characters",
    ),
}


def _clean_token(value: str, required: bool) -> str:
    token = value.strip()
    if not token:
        if required:
            raise forms.ValidationError("Enter the private app access token.")
        return ""
    if any(character.isspace() for character in token) or len(token) > 500:
        raise forms.ValidationError(
            "Invalid access token: paste the token from the private app's Auth "
            "tab, without spaces."
        )
    return token


def _clean_secret(value: str, label: str) -> str:
    """Return a pasted credential without surrounding spaces, else raise.

    The error names the field, never the value, because the page shows it.
    """
    secret = value.strip()
    if not secret:
        raise forms.ValidationError(f"Enter the {label}.")
    if any(character.isspace() for character in secret) or len(secret) > 1000:
        raise forms.ValidationError(
            f"Invalid {label}: paste it again without spaces (at most 1,000 "
            "characters)."
        )
    return secret


def _secret_field(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=help_text,
    )


def _provider_unused(provider: str) -> None:
    """Raise unless the organisation has no connection to ``provider`` yet."""
    existing = CrmConnection.objects.filter(provider=provider).first()
    if existing is not None:
        label = CrmConnection.Provider(provider).label
        raise forms.ValidationError(
            f"This organisation already has a {label} connection, "
            f"{existing.name!r}; change it on its settings page."
        )


def auth_method_of(value: str | None) -> str:
    """Return the requested auth method, or the token method for any other value."""
    return value if value in AUTH_METHODS else AUTH_TOKEN


def _client_id_field() -> forms.CharField:
    return forms.CharField(
        label="Client ID",
        max_length=255,
        help_text="From the app's Auth or OAuth settings.",
    )


class _AuthMethodMixin:
    """Keep only the fields of the form's auth method (``AUTH_METHODS``)."""

    provider = ""

    def _fields_keep(self, auth_method: str) -> None:
        self.auth_method = auth_method_of(auth_method)
        unused = (
            OAUTH_FIELDS[self.provider]
            if self.auth_method == AUTH_TOKEN
            else TOKEN_FIELDS[self.provider]
        )
        for name in unused:
            del self.fields[name]

    def clean_client_id(self) -> str:
        return _clean_secret(self.cleaned_data["client_id"], "client ID")

    def clean_client_secret(self) -> str:
        return _clean_secret(self.cleaned_data["client_secret"], "client secret")

    def clean_refresh_token(self) -> str:
        return _clean_secret(self.cleaned_data["refresh_token"], "refresh token")

    def oauth_credentials(self) -> dict:
        """Return the entered client ID, client secret and refresh token."""
        return {
            "client_id": self.cleaned_data["client_id"],
            "client_secret": self.cleaned_data["client_secret"],
            "refresh_token": self.cleaned_data["refresh_token"],
        }


def _clean_base_url(value: str) -> str:
    """Return the API address when it is https and public, else raise.

    The token is sent to this address, so it passes the same check as
    webhook URLs: https (http too while DEBUG is on), and no private,
    loopback or link-local address unless the organisation allows them
    under Notifications, Webhooks.
    """
    try:
        return url_check(value, allow_private=allow_private_addresses()).url
    except UnsafeURL as error:
        raise forms.ValidationError(str(error)) from None


class HubSpotConnectForm(_AuthMethodMixin, ValueErrorMessagesMixin, forms.Form):
    """A private app token, or (``auth_method`` "oauth") a HubSpot app's OAuth 2."""

    provider = "hubspot"
    name = forms.CharField(max_length=120, initial="HubSpot")
    base_url = forms.URLField(
        label="API address",
        max_length=300,
        initial=HUBSPOT_API_URL,
        assume_scheme="https",
        help_text=f"HubSpot's API address, {HUBSPOT_API_URL}.",
    )
    access_token = forms.CharField(
        label="Private app access token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted. The page never shows it again.",
    )
    client_id = _client_id_field()
    client_secret = _secret_field(
        "Client secret", "From the app's Auth tab. Stored encrypted."
    )
    refresh_token = _secret_field(
        "Refresh token",
        "The refresh token HubSpot issued when the app was installed in this "
        "account. Stored encrypted.",
    )
    api_tier = forms.ChoiceField(
        label="HubSpot subscription",
        choices=ApiTier.choices,
        initial=ApiTier.STARTER,
        help_text="Sets the API limits the budget compares the calls against.",
    )

    def __init__(self, *args, auth_method: str = AUTH_TOKEN, **kwargs):
        super().__init__(*args, **kwargs)
        self._fields_keep(auth_method)

    def clean_access_token(self) -> str:
        return _clean_token(self.cleaned_data["access_token"], required=True)

    def clean_base_url(self) -> str:
        return _clean_base_url(self.cleaned_data["base_url"])

    def clean(self):
        cleaned = super().clean()
        existing = CrmConnection.objects.filter(
            provider=CrmConnection.Provider.HUBSPOT
        ).first()
        if existing is not None:
            raise forms.ValidationError(
                f"This organisation already has a HubSpot connection, "
                f"{existing.name!r}; change its token on its settings page."
            )
        return cleaned


class SalesforceConnectForm(ValueErrorMessagesMixin, forms.Form):
    name = forms.CharField(max_length=120, initial="Salesforce")
    base_url = forms.URLField(
        label="Login or My Domain address",
        max_length=300,
        initial=SALESFORCE_LOGIN_URL,
        assume_scheme="https",
        help_text=(
            f"Where Attain refreshes its access token: {SALESFORCE_LOGIN_URL}, "
            "https://test.salesforce.com for a sandbox, or your My Domain "
            "address such as https://acme.my.salesforce.com."
        ),
    )
    client_id = forms.CharField(
        label="Consumer key",
        max_length=255,
        help_text="From the connected app's API (Enable OAuth Settings) section.",
    )
    client_secret = _secret_field(
        "Consumer secret", "Stored encrypted. The page never shows it again."
    )
    refresh_token = _secret_field(
        "Refresh token",
        "A refresh token the connected app issued with the api and "
        "refresh_token scopes. Stored encrypted.",
    )

    def clean_base_url(self) -> str:
        return _clean_base_url(self.cleaned_data["base_url"])

    def clean_client_id(self) -> str:
        return _clean_secret(self.cleaned_data["client_id"], "consumer key")

    def clean_client_secret(self) -> str:
        return _clean_secret(self.cleaned_data["client_secret"], "consumer secret")

    def clean_refresh_token(self) -> str:
        return _clean_secret(self.cleaned_data["refresh_token"], "refresh token")

    def clean(self):
        cleaned = super().clean()
        _provider_unused(CrmConnection.Provider.SALESFORCE)
        return cleaned


class PipedriveConnectForm(_AuthMethodMixin, ValueErrorMessagesMixin, forms.Form):
    """An API token, or (``auth_method`` "oauth") a Pipedrive app's OAuth 2."""

    provider = "pipedrive"
    name = forms.CharField(max_length=120, initial="Pipedrive")
    base_url = forms.URLField(
        label="Company API address",
        max_length=300,
        assume_scheme="https",
        help_text=(
            "Your company domain followed by /api, such as "
            "https://acme.pipedrive.com/api."
        ),
    )
    api_token = _secret_field(
        "API token",
        "From Personal preferences, API, in Pipedrive. Stored encrypted.",
    )
    client_id = _client_id_field()
    client_secret = _secret_field(
        "Client secret", "From the app's OAuth & access scopes page. Stored encrypted."
    )
    refresh_token = _secret_field(
        "Refresh token",
        "The refresh token Pipedrive issued when the app was installed. "
        "Stored encrypted.",
    )
    token_url = forms.URLField(
        label="OAuth token URL",
        max_length=300,
        initial=PIPEDRIVE_TOKEN_URL,
        assume_scheme="https",
        help_text=f"Where Attain refreshes its access token: {PIPEDRIVE_TOKEN_URL}.",
    )

    def __init__(self, *args, auth_method: str = AUTH_TOKEN, **kwargs):
        super().__init__(*args, **kwargs)
        self._fields_keep(auth_method)

    def clean_base_url(self) -> str:
        return _clean_base_url(self.cleaned_data["base_url"])

    def clean_token_url(self) -> str:
        return _clean_base_url(self.cleaned_data["token_url"])

    def clean_api_token(self) -> str:
        return _clean_secret(self.cleaned_data["api_token"], "API token")

    def clean(self):
        cleaned = super().clean()
        _provider_unused(CrmConnection.Provider.PIPEDRIVE)
        return cleaned


class WebhookSettingsForm(ValueErrorMessagesMixin, forms.Form):
    """The webhook settings of one connection, with fields per provider.

    HubSpot signs with the app's client secret, which the admin enters.
    For Pipedrive and Salesforce, saving generates a new random secret.
    """

    def __init__(self, *args, connection: CrmConnection, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = connection.provider
        credentials = connection.credentials
        if self.provider == CrmConnection.Provider.HUBSPOT:
            self.fields["secret"] = _secret_field(
                "App client secret",
                "From the Auth tab of the HubSpot app that subscribes to the "
                "webhooks. Stored encrypted.",
            )
        elif self.provider == CrmConnection.Provider.PIPEDRIVE:
            self.fields["username"] = forms.CharField(
                label="HTTP auth user name",
                max_length=100,
                initial=credentials.get("webhook_username") or "attain",
                help_text="Enter it as the webhook's HTTP auth user in Pipedrive.",
            )
        else:
            self.fields["salesforce_organization_id"] = forms.CharField(
                label="Salesforce organization ID",
                max_length=18,
                initial=credentials.get("salesforce_organization_id", ""),
                help_text="Setup, Company Information, Salesforce.com Organization ID.",
            )

    def clean_secret(self) -> str:
        return _clean_secret(self.cleaned_data["secret"], "app client secret")

    def clean_username(self) -> str:
        value = self.cleaned_data["username"].strip()
        if not WEBHOOK_USERNAME.match(value):
            raise forms.ValidationError(
                f"Invalid user name {value!r}: use no spaces and no colon."
            )
        return value

    def clean_salesforce_organization_id(self) -> str:
        value = self.cleaned_data["salesforce_organization_id"].strip()
        if not SALESFORCE_ORG_ID.match(value):
            raise forms.ValidationError(
                f"Invalid organization ID {value!r}: expected 15 or 18 letters "
                "and digits starting with 00D."
            )
        return value


class ConnectionSettingsForm(ValueErrorMessagesMixin, forms.Form):
    name = forms.CharField(max_length=120)
    base_url = forms.URLField(
        label="API address", max_length=300, assume_scheme="https"
    )
    api_tier = forms.ChoiceField(
        label="HubSpot subscription",
        choices=ApiTier.choices,
        help_text="Sets the API limits the budget compares the calls against.",
    )
    status = forms.ChoiceField(
        choices=[
            (CrmConnection.Status.ACTIVE, "Active: syncs every five minutes"),
            (CrmConnection.Status.PAUSED, "Paused: no sync"),
        ]
    )
    access_token = forms.CharField(
        label="New access token",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the stored token.",
    )

    def clean_access_token(self) -> str:
        return _clean_token(self.cleaned_data.get("access_token", ""), required=False)

    def clean_base_url(self) -> str:
        return _clean_base_url(self.cleaned_data["base_url"])


class OwnerMappingForm(ValueErrorMessagesMixin, forms.Form):
    """One member choice per CRM owner, named ``owner-<mapping id>``."""

    def __init__(self, *args, mappings, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.mappings = mappings
        choices = [("", "No member (unmapped)")] + [
            (str(member.public_id), member.display_name) for member in members
        ]
        self.members = {str(member.public_id): member for member in members}
        for mapping in mappings:
            self.fields[f"owner-{mapping.pk}"] = forms.ChoiceField(
                label=mapping.name or mapping.owner_id,
                choices=choices,
                required=False,
                initial=str(mapping.membership.public_id) if mapping.membership else "",
            )

    def rows(self):
        """Yield (mapping, bound field) in the mappings' order."""
        for mapping in self.mappings:
            yield mapping, self[f"owner-{mapping.pk}"]

    def chosen(self) -> dict:
        """Return {mapping id: member or None} from the cleaned data."""
        return {
            mapping.pk: self.members.get(self.cleaned_data[f"owner-{mapping.pk}"])
            for mapping in self.mappings
        }


# Help text of the CRM property field, by provider.
CRM_PROPERTY_HELP = {
    CrmConnection.Provider.HUBSPOT: (
        "The property's internal name in HubSpot, such as dealtype."
    ),
    CrmConnection.Provider.SALESFORCE: (
        "The field's API name in Salesforce, such as Type or Segment__c."
    ),
    CrmConnection.Provider.PIPEDRIVE: (
        "The deal field's key in Pipedrive, such as the 40-character key of a "
        "custom field (Company settings, Data fields)."
    ),
}


class FieldMappingForm(ValueErrorMessagesMixin, forms.Form):
    """A CRM deal property mapped to an Attain field of the deal.

    Every target is a column of the deal, so only deal properties can be
    mapped and the form offers no object type. A request that still posts a
    non-empty ``object_type`` must post "deals", and any other value is
    rejected.
    """

    crm_property = forms.CharField(label="CRM property", max_length=255)
    target = forms.ChoiceField(
        label="Attain field", choices=FieldMapping.Target.choices
    )

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.fields["crm_property"].help_text = CRM_PROPERTY_HELP[provider]

    def clean_crm_property(self) -> str:
        value = self.cleaned_data["crm_property"].strip()
        pattern, rule = PROPERTY_NAMES[self.provider]
        if not pattern.fullmatch(value):
            raise forms.ValidationError(f"Invalid property name {value!r}: {rule}.")
        return value

    def clean(self):
        cleaned = super().clean()
        object_type = self.data.get("object_type") or base.DEALS
        if object_type != base.DEALS:
            raise forms.ValidationError(
                f"Invalid object type {object_type!r}: only deal properties can "
                "be mapped, because every Attain field here is a field of the deal."
            )
        cleaned["object_type"] = base.DEALS
        return cleaned
