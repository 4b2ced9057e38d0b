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
ENGAGEMENT_TYPES = (CALLS, EMAILS, MEETINGS)
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
