"""The interface every CRM connector offers to the sync engine.

A connector turns one provider's API into pages of ``CrmRecord``. The sync
engine (integrations.sync) writes each page in one transaction together with
its cursor, so a connector never touches the database.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

COMPANIES = "companies"
CONTACTS = "contacts"
DEALS = "deals"
CALLS = "calls"
EMAILS = "emails"
MEETINGS = "meetings"
NOTES = "notes"
ENGAGEMENT_TYPES = (CALLS, EMAILS, MEETINGS, NOTES)
# The order a sync writes them in, so references point at rows already synced.
OBJECT_TYPES = (COMPANIES, CONTACTS, DEALS, *ENGAGEMENT_TYPES)


def sync_order(extra_object_types: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Return the object types a run lists, in order.

    A connector's own object types (Salesforce leads) come after the deals,
    which a converted lead points at, and before the activities, which may
    point at a lead.
    """
    return (COMPANIES, CONTACTS, DEALS, *extra_object_types, *ENGAGEMENT_TYPES)


# The writers (integrations.writers) read record properties by HubSpot's
# names, so every connector stores the owner's CRM id under this key and
# renames its other fields the same way, for example Salesforce's Name to
# "dealname" on deals.
OWNER_PROPERTY = "hubspot_owner_id"


class ConnectorError(Exception):
    """The CRM returned an error that retrying will not fix."""


class AuthenticationFailed(ConnectorError):
    """The CRM rejected the credentials (HTTP 401)."""


# A stored access token counts as expired this many seconds before the
# expiry its token response gave, so a request sent just before the expiry
# does not arrive just after it.
TOKEN_EXPIRY_MARGIN_SECONDS = 60


@dataclass
class OAuthTokens:
    """An OAuth 2 access token, its expiry and the refresh token that renews it.

    ``expires_at`` is a Unix time (seconds), None when the token response
    named no lifetime (Salesforce's has none). ``instance_url`` is the API
    address Salesforce returns with each token; other providers leave it
    empty.
    """

    refresh_token: str
    access_token: str = ""
    expires_at: float | None = None
    instance_url: str = ""

    def usable(self, now: float) -> bool:
        """Return whether the access token may be sent at Unix time ``now``."""
        if not self.access_token:
            return False
        if self.expires_at is None:
            return True
        return now < self.expires_at - TOKEN_EXPIRY_MARGIN_SECONDS

    def renewed(self, body: dict, now: float) -> OAuthTokens:
        """Return the tokens of a successful token response received at ``now``.

        A response without ``refresh_token`` keeps the current one, and one
        without ``expires_in`` gives a token with no known expiry.
        """
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = now + float(expires_in)
        return OAuthTokens(
            refresh_token=body.get("refresh_token") or self.refresh_token,
            access_token=body["access_token"],
            expires_at=expires_at,
            instance_url=(body.get("instance_url") or self.instance_url).rstrip("/"),
        )

    def credentials(self) -> dict:
        """Return the fields stored in a connection's credentials."""
        values = {
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "access_token_expires_at": self.expires_at,
        }
        if self.instance_url:
            values["instance_url"] = self.instance_url
        return values


class CrmUnavailable(ConnectorError):
    """A request failed with 429, 5xx or a network error, so a later retry may work.

    ``retry_after`` is the delay in seconds the CRM asked for in its
    Retry-After header, or None when it named none.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Keyset:
    """A position in a listing sorted by (modified time, record id).

    Ids compare as numbers when both are digits, so "9" sorts before "10".
    """

    modified_at: dt.datetime
    record_id: str = ""

    def sort_key(self) -> tuple:
        return keyset_sort_key(self.modified_at, self.record_id)


def keyset_sort_key(modified_at: dt.datetime, record_id: str) -> tuple:
    if record_id.isdigit():
        return (modified_at, 0, int(record_id), "")
    return (modified_at, 1, 0, record_id)


@dataclass
class CrmRecord:
    id: str
    modified_at: dt.datetime
    properties: dict[str, str | None]
    archived: bool = False
    archived_at: dt.datetime | None = None
    # Ids of associated records by object type, for example {"companies": ["7"]}.
    associations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def keyset(self) -> Keyset:
        return Keyset(self.modified_at, self.id)


@dataclass
class Page:
    records: list[CrmRecord]
    # Token that lists the page after this one; None on the last page.
    next_after: str | None = None


@dataclass(frozen=True)
class Owner:
    id: str
    email: str
    name: str


@dataclass(frozen=True)
class StageInfo:
    id: str
    label: str
    display_order: int
    is_closed: bool
    probability: Decimal


@dataclass(frozen=True)
class PipelineInfo:
    id: str
    label: str
    display_order: int
    stages: tuple[StageInfo, ...]


class Connector(abc.ABC):
    provider: str
    # Object types of OBJECT_TYPES that the provider has no counterpart for.
    # A run neither lists nor defers them.
    unsupported_object_types: tuple[str, ...] = ()

    @abc.abstractmethod
    def owners(self) -> list[Owner]:
        """Return every active owner (the CRM's users who own records)."""

    @abc.abstractmethod
    def pipelines(self) -> list[PipelineInfo]:
        """Return the deal pipelines with their stages."""

    @abc.abstractmethod
    def list_pages(self, object_type: str, after: str | None = None) -> Iterator[Page]:
        """Yield every live record of a type, starting at the paging token ``after``."""

    @abc.abstractmethod
    def changed_pages(self, object_type: str, since: Keyset | None) -> Iterator[Page]:
        """Yield the records modified after ``since``, in keyset order.

        Each record comes once, and its keyset is greater than ``since``.
        """

    @abc.abstractmethod
    def archived_pages(self, object_type: str) -> Iterator[Page]:
        """Yield the archived (deleted) records of a type."""

    def companies(self) -> Iterator[Page]:
        return self.list_pages(COMPANIES)

    def contacts(self) -> Iterator[Page]:
        return self.list_pages(CONTACTS)

    def deals(self) -> Iterator[Page]:
        return self.list_pages(DEALS)

    def engagements(self) -> Iterator[tuple[str, Page]]:
        for object_type in ENGAGEMENT_TYPES:
            for page in self.list_pages(object_type):
                yield object_type, page
