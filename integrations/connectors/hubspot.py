"""HubSpot CRM v3 over HTTP, with a private app token or OAuth 2.

A private app access token is sent as it is. With OAuth 2, the connector
gets an access token with ``POST /oauth/v1/token`` on the connection's base
URL (form body grant_type=refresh_token, client_id, client_secret and
refresh_token). It refreshes again when the token's ``expires_in`` has run
out, and once more after a 401, before repeating the request. The
connection keeps the refreshed token (integrations.sync), so the next run
reuses it until it expires.

Every request first takes a slot from the token's rolling-window limiter
(by default 100 requests per 10 s, the burst limit HubSpot documents for
private apps on Free and Starter accounts), and search requests also from a
per-second limiter. A 429 response is retried after its Retry-After header, or
after a whole window when the header is missing. 5xx responses and network
errors are retried with exponential backoff. Neither skips a page.

CRM search returns at most 10,000 results per query, so ``changed_pages``
starts a new query from the last keyset before reaching that ceiling.
Search results carry no associations, so after each search page the
connector reads them with the v4 batch associations API, one request per
associated object type.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from integrations.connectors.base import (
    CALLS,
    COMPANIES,
    CONTACTS,
    DEALS,
    EMAILS,
    MEETINGS,
    NOTES,
    AuthenticationFailed,
    Connector,
    ConnectorError,
    CrmRecord,
    CrmUnavailable,
    Keyset,
    OAuthTokens,
    Owner,
    Page,
    PipelineInfo,
    StageInfo,
)
from integrations.connectors.http import (
    REQUEST_TIMEOUT,
    OAuthRefresher,
    connect_error,
    connect_failed,
    fail_fast_on_connect,
    server_address,
)
from integrations.connectors.ratelimit import (
    REAL_CLOCK,
    Clock,
    RollingWindowLimiter,
    limiter_for,
)

logger = logging.getLogger(__name__)

LIST_PAGE_SIZE = 100
SEARCH_PAGE_SIZE = 200
# A search query returns no result past this offset (HTTP 400 instead).
SEARCH_RESULT_LIMIT = 10_000
BURST_LIMIT = (100, 10.0)
# HubSpot's changelog of 30 April 2020 raised CRM search to 4 requests per
# second per token; later documentation may allow more.
SEARCH_LIMIT = (4, 1.0)
MAX_RATE_LIMITED_RETRIES = 10
MAX_SERVER_ERROR_RETRIES = 5
TOKEN_PATH = "/oauth/v1/token"

# Companies and contacts also read hs_merged_object_ids, the ids of the
# records merged into them, whose rows the writers then delete.
PROPERTIES = {
    COMPANIES: (
        "name",
        "domain",
        "industry",
        "country",
        "hubspot_owner_id",
        "hs_merged_object_ids",
    ),
    CONTACTS: (
        "firstname",
        "lastname",
        "email",
        "phone",
        "jobtitle",
        "associatedcompanyid",
        "hubspot_owner_id",
        "createdate",
        "hs_merged_object_ids",
    ),
    DEALS: (
        "dealname",
        "amount",
        "deal_currency_code",
        "pipeline",
        "dealstage",
        "closedate",
        "createdate",
        "hubspot_owner_id",
    ),
    CALLS: ("hs_call_title", "hs_timestamp", "hubspot_owner_id"),
    EMAILS: ("hs_email_subject", "hs_timestamp", "hubspot_owner_id"),
    MEETINGS: ("hs_meeting_title", "hs_timestamp", "hubspot_owner_id"),
    NOTES: ("hs_note_body", "hs_timestamp", "hubspot_owner_id"),
}
# HubSpot internal property names are letters, digits and underscores.
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_]+")
# Contacts name their last-modified property differently from other objects.
MODIFIED_PROPERTY = {CONTACTS: "lastmodifieddate"}
# The associated object types that listings and record fetches request, and
# that searches read with the batch associations API, by object type.
ENGAGEMENT_ASSOCIATIONS = ("deals", "contacts", "companies")
ASSOCIATIONS = {
    DEALS: ("companies",),
    CALLS: ENGAGEMENT_ASSOCIATIONS,
    EMAILS: ENGAGEMENT_ASSOCIATIONS,
    MEETINGS: ENGAGEMENT_ASSOCIATIONS,
    NOTES: ENGAGEMENT_ASSOCIATIONS,
}

# Maximum ids in one request to the batch associations read endpoint
# (HubSpot developer changelog, in force from 10 February 2025).
ASSOCIATION_BATCH_LIMIT = 1000
# The error ``subCategory`` that the batch associations read gives an id
# with no associated record of the requested type (HTTP 207 Multi-Status).
NO_ASSOCIATIONS_FOUND = "crm.associations.NO_ASSOCIATIONS_FOUND"


class RecordNotFound(ConnectorError):
    """HubSpot responded 404 to a request for one record."""


@dataclass
class RecordWithHistory:
    record: CrmRecord
    # Property name -> (value, time it was set), oldest first.
    history: dict[str, list[tuple[str | None, dt.datetime]]]


def modified_property(object_type: str) -> str:
    return MODIFIED_PROPERTY.get(object_type, "hs_lastmodifieddate")


def parse_datetime(value: str | None) -> dt.datetime | None:
    """Parse an ISO 8601 time or epoch milliseconds, as HubSpot writes both."""
    if not value:
        return None
    if value.isdigit():
        return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def epoch_millis(value: dt.datetime) -> str:
    return str(int(value.timestamp() * 1000))


class HubSpotConnector(Connector):
    provider = "hubspot"

    def __init__(
        self,
        *,
        base_url: str,
        token: str = "",
        client_id: str = "",
        client_secret: str = "",
        refresh_token: str = "",
        access_token_expires_at: float | None = None,
        clock: Clock = REAL_CLOCK,
        limiter: RollingWindowLimiter | None = None,
        search_limiter: RollingWindowLimiter | None = None,
        session: requests.Session | None = None,
    ):
        """Connect with ``token``, a private app token, or with OAuth 2.

        With ``refresh_token`` set, ``token`` is the stored OAuth access token
        (empty when none is stored yet) and ``access_token_expires_at`` its
        expiry as a Unix time.
        """
        if not token and not refresh_token:
            raise ConnectorError(
                "A HubSpot connection needs an access_token, or a refresh_token "
                "with client_id and client_secret, in its credentials."
            )
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client_id = client_id
        self._client_secret = client_secret
        self.clock = clock
        self.session = session or requests.Session()
        self.oauth: OAuthRefresher | None = None
        if refresh_token:
            self.oauth = OAuthRefresher(
                provider_label="HubSpot",
                tokens=OAuthTokens(
                    refresh_token=refresh_token,
                    access_token=token,
                    expires_at=access_token_expires_at,
                ),
                request_token=self._request_token,
            )
        # OAuth access tokens change with each refresh, so the limiters of an
        # OAuth connection are keyed by its refresh token.
        limiter_key = refresh_token or token
        self.limiter = limiter or limiter_for(limiter_key, "burst", *BURST_LIMIT)
        self.search_limiter = search_limiter or limiter_for(
            limiter_key, "search", *SEARCH_LIMIT
        )
        self.list_page_size = LIST_PAGE_SIZE
        self.search_page_size = SEARCH_PAGE_SIZE
        # Properties requested besides PROPERTIES, by object type.
        self.mapped_properties: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"<HubSpotConnector {self.base_url}>"

    def mapped_properties_set(
        self, object_type: str, names: list[str]
    ) -> dict[str, str]:
        """Add the properties ``names`` to every read and return the rejected ones.

        The result maps each rejected name to the reason. Records keep each
        property under its own name. HubSpot leaves a
        property that does not exist out of its responses, so such a mapping
        leaves the mapped field unchanged.
        """
        self._properties(object_type)
        rejected = {
            name: (
                f"{name!r} is not a HubSpot property name: internal names "
                "contain only letters, digits and underscores. Map the "
                "property's internal name."
            )
            for name in names
            if not PROPERTY_NAME.fullmatch(name)
        }
        accepted = tuple(name for name in names if name not in rejected)
        self.mapped_properties[object_type] = accepted
        return rejected

    # Reads

    def owners(self) -> list[Owner]:
        owners = []
        after = None
        while True:
            params = {"limit": self.list_page_size, "archived": "false"}
            if after:
                params["after"] = after
            data = self._send("GET", "/crm/v3/owners", params=params)
            for item in data.get("results", []):
                name = " ".join(
                    part
                    for part in (item.get("firstName"), item.get("lastName"))
                    if part
                )
                owners.append(Owner(str(item["id"]), item.get("email") or "", name))
            after = _next_after(data)
            if after is None:
                return owners

    def pipelines(self) -> list[PipelineInfo]:
        data = self._send("GET", "/crm/v3/pipelines/deals")
        return [_pipeline(item) for item in data.get("results", [])]

    def list_pages(self, object_type: str, after: str | None = None) -> Iterator[Page]:
        yield from self._list(object_type, after=after, archived=False)

    def archived_pages(self, object_type: str) -> Iterator[Page]:
        """Yield the archived (deleted) records of any object type, deals to notes.

        Merged contacts and companies are read from the result's
        ``hs_merged_object_ids`` instead, which HubSpot documents for merges.
        """
        yield from self._list(object_type, after=None, archived=True)

    def changed_pages(self, object_type: str, since: Keyset | None) -> Iterator[Page]:
        lower = since
        while True:
            restart = yield from self._search_window(object_type, lower)
            if restart is None:
                return
            lower = restart

    def fetch_record(self, object_type: str, record_id: str) -> CrmRecord | None:
        """Fetch one record by id, or return None when HubSpot has no such record."""
        fetched = self.fetch_record_with_history(object_type, record_id, ())
        return fetched.record if fetched else None

    def fetch_record_with_history(
        self, object_type: str, record_id: str, history_properties: tuple[str, ...]
    ) -> RecordWithHistory | None:
        """Fetch one record and the past values of ``history_properties``.

        Return None when HubSpot responds 404 (a deleted or unknown record).
        """
        params: dict[str, Any] = {
            "properties": ",".join(self._properties(object_type)),
            "archived": "false",
        }
        if ASSOCIATIONS.get(object_type):
            params["associations"] = ",".join(ASSOCIATIONS[object_type])
        if history_properties:
            params["propertiesWithHistory"] = ",".join(history_properties)
        path = f"/crm/v3/objects/{object_type}/{record_id}"
        try:
            data = self._send("GET", path, params=params)
        except RecordNotFound:
            return None
        history = {
            name: _history_values(entries)
            for name, entries in (data.get("propertiesWithHistory") or {}).items()
        }
        return RecordWithHistory(_record(data, ASSOCIATIONS.get(object_type)), history)

    # Writes

    def contact_find_by_email(self, email: str) -> CrmRecord | None:
        """Return the contact whose primary email is ``email``, or None.

        HubSpot keeps contact emails unique, so the first result is the only
        one. Search results can lag a few seconds behind recent writes.
        """
        body = {
            "limit": 1,
            "properties": list(self._properties(CONTACTS)),
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "email", "operator": "EQ", "value": email}
                    ]
                }
            ],
        }
        path = f"/crm/v3/objects/{CONTACTS}/search"
        data = self._send("POST", path, body=body, search=True)
        results = data.get("results") or []
        return _record(results[0]) if results else None

    def record_create(self, object_type: str, properties: dict[str, str]) -> CrmRecord:
        """Create a record with ``properties`` and return it as HubSpot stored it."""
        path = f"/crm/v3/objects/{object_type}"
        data = self._send("POST", path, body={"properties": properties})
        return _record(data)

    def record_update(
        self, object_type: str, record_id: str, properties: dict[str, str]
    ) -> CrmRecord:
        """Overwrite ``properties`` of one record and return the updated record."""
        path = f"/crm/v3/objects/{object_type}/{record_id}"
        data = self._send("PATCH", path, body={"properties": properties})
        return _record(data)

    # Listing and search

    def _list(self, object_type: str, *, after: str | None, archived: bool):
        path = f"/crm/v3/objects/{object_type}"
        while True:
            params: dict[str, Any] = {
                "limit": self.list_page_size,
                "archived": "true" if archived else "false",
                "properties": ",".join(self._properties(object_type)),
            }
            if ASSOCIATIONS.get(object_type):
                params["associations"] = ",".join(ASSOCIATIONS[object_type])
            if after:
                params["after"] = after
            data = self._send("GET", path, params=params)
            after = _next_after(data)
            requested = ASSOCIATIONS.get(object_type)
            records = [_record(item, requested) for item in data.get("results", [])]
            yield Page(records, after)
            if after is None:
                return

    def _search_window(self, object_type: str, lower: Keyset | None):
        """Yield the pages of one search query from ``lower`` on.

        Return the keyset to start the next query from, or None when the
        listing is complete. The query requests modified time >= lower's, so
        records at exactly that time that were already seen are dropped here.
        """
        path = f"/crm/v3/objects/{object_type}/search"
        after = None
        fetched = 0
        last: Keyset | None = None
        while True:
            body = self._search_body(object_type, lower, after)
            data = self._send("POST", path, body=body, search=True)
            records = [_record(item) for item in data.get("results", [])]
            fetched += len(records)
            if records:
                last = records[-1].keyset
            # NOTE: HubSpot documents one sort rule per search, so records
            # sharing a modified time are assumed to come in id order, as
            # they do in the test server. Otherwise a restart could skip one.
            fresh = [r for r in records if _after_keyset(r.keyset, lower)]
            if fresh:
                self._associations_read(object_type, fresh)
                yield Page(fresh, None)

            after = _next_after(data)
            if after is None:
                return None
            if fetched + self.search_page_size > SEARCH_RESULT_LIMIT:
                return self._restart_keyset(object_type, lower, last)

    def _associations_read(self, object_type: str, records: list[CrmRecord]) -> None:
        """Set the associations of search results as a listing would.

        Each type in ASSOCIATIONS costs one request per 1,000 records, and
        one more per further page of a record's associations. A record gets
        an empty list for a type with no associated record, so the writers
        clear a removed link. A record that HubSpot reports another error
        for gets no entry, so its stored links stay.
        """
        ids = [record.id for record in records]
        for to_type in ASSOCIATIONS.get(object_type, ()):
            linked = self._associated_ids(object_type, to_type, ids)
            for record in records:
                if record.id in linked:
                    record.associations[to_type] = linked[record.id]

    def _associated_ids(
        self, from_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[str]]:
        """Read the ``to_type`` ids associated with each of ``ids``.

        Follow each id's ``paging.next.after`` until its last page. Return
        the associated ids by record id, without the records whose read failed.
        """
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        linked: dict[str, list[str]] = {}
        failed: set[str] = set()
        inputs = [{"id": record_id} for record_id in ids]
        while inputs:
            following = []
            for start in range(0, len(inputs), ASSOCIATION_BATCH_LIMIT):
                batch = inputs[start : start + ASSOCIATION_BATCH_LIMIT]
                data = self._send("POST", path, body={"inputs": batch})
                following += _batch_results(data, linked)
                failed |= _batch_failures(data, batch, path)
            inputs = following
        return {
            record_id: linked.get(record_id, [])
            for record_id in ids
            if record_id not in failed
        }

    def _restart_keyset(
        self, object_type: str, lower: Keyset | None, last: Keyset | None
    ) -> Keyset:
        if last is None or (
            lower is not None and last.modified_at == lower.modified_at
        ):
            raise ConnectorError(
                f"More than {SEARCH_RESULT_LIMIT} HubSpot {object_type} share the "
                "modified time "
                f"{lower.modified_at.isoformat() if lower else 'unknown'}, so "
                "search cannot page past them. Run a full sync instead."
            )
        logger.info(
            "HubSpot %s search reached %s results; continuing from %s",
            object_type,
            SEARCH_RESULT_LIMIT,
            last.modified_at.isoformat(),
        )
        return last

    def _search_body(
        self, object_type: str, lower: Keyset | None, after: str | None
    ) -> dict:
        prop = modified_property(object_type)
        body: dict[str, Any] = {
            "limit": self.search_page_size,
            "properties": list(self._properties(object_type)),
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
        }
        if lower is not None:
            filters = [
                {
                    "propertyName": prop,
                    "operator": "GTE",
                    "value": epoch_millis(lower.modified_at),
                }
            ]
            body["filterGroups"] = [{"filters": filters}]
        if after:
            body["after"] = after
        return body

    def _properties(self, object_type: str) -> tuple[str, ...]:
        try:
            standard = (*PROPERTIES[object_type], modified_property(object_type))
        except KeyError:
            raise ConnectorError(
                f"Unknown HubSpot object type {object_type!r}: expected one of "
                f"{', '.join(PROPERTIES)}."
            ) from None
        mapped = self.mapped_properties.get(object_type, ())
        return standard + tuple(name for name in mapped if name not in standard)

    # HTTP

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        search: bool = False,
    ) -> dict:
        """Send one request, waiting for the limiters and retrying 429 and 5xx.

        With OAuth, a 401 refreshes the access token once and repeats the
        request.
        """
        rate_limited = 0
        server_errors = 0
        refreshed = False
        while True:
            if search:
                self.search_limiter.acquire()
            self.limiter.acquire()
            bearer = self._bearer()
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {bearer}"},
                    timeout=REQUEST_TIMEOUT,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = type(exc).__name__
                if connect_failed(exc):
                    if fail_fast_on_connect():
                        raise connect_error("HubSpot", self.base_url, exc) from exc
                    reason = f"{reason} connecting to {server_address(self.base_url)}"
                server_errors += 1
                self._back_off(method, path, reason, server_errors)
                continue

            status = response.status_code
            if status == 429:
                rate_limited += 1
                self._wait_rate_limited(method, path, response, rate_limited)
                continue
            if status >= 500:
                server_errors += 1
                self._back_off(method, path, f"HTTP {status}", server_errors)
                continue
            if status == 401 and self.oauth is not None and not refreshed:
                logger.info(
                    "HubSpot rejected the access token on %s %s (%s); refreshing it",
                    method,
                    path,
                    _json_or_empty(response).get("category") or "HTTP 401",
                )
                self.oauth.refresh_after_rejection(bearer)
                refreshed = True
                continue
            if status == 401:
                raise AuthenticationFailed(self._rejected_message(response, refreshed))
            if status == 404 and method == "GET" and "/objects/" in path:
                raise RecordNotFound(f"HubSpot has no record at {path}.")
            if status >= 400:
                raise ConnectorError(
                    f"HubSpot returned HTTP {status} for {method} {path}: "
                    f"{_error_message(response)}"
                )
            return response.json()

    def _bearer(self) -> str:
        if self.oauth is None:
            return self._token
        return self.oauth.access_token()

    def _rejected_message(self, response: requests.Response, refreshed: bool) -> str:
        category = _json_or_empty(response).get("category") or "no category"
        if self.oauth is None:
            return (
                f"HubSpot rejected the access token (HTTP 401, {category}). Enter "
                "a valid private app access token for this connection."
            )
        after = " even after a refresh" if refreshed else ""
        return (
            f"HubSpot rejected the OAuth access token (HTTP 401, {category}){after}. "
            "Reconnect the HubSpot connection."
        )

    def _request_token(self, refresh_token: str) -> requests.Response:
        """Send HubSpot's refresh request, without retries."""
        data = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": refresh_token,
        }
        url = self.base_url + TOKEN_PATH
        try:
            return self.session.request(
                "POST",
                url,
                data=data,
                headers={"Accept": "application/json"},
                timeout=REQUEST_TIMEOUT,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            if connect_failed(exc):
                raise connect_error("HubSpot", self.base_url, exc) from exc
            raise CrmUnavailable(
                f"HubSpot token refresh POST {TOKEN_PATH} failed with "
                f"{type(exc).__name__}. The next sync tries again."
            ) from exc

    def _wait_rate_limited(
        self, method: str, path: str, response: requests.Response, attempt: int
    ) -> None:
        if attempt > MAX_RATE_LIMITED_RETRIES:
            raise ConnectorError(
                f"HubSpot still returned 429 for {method} {path} after "
                f"{MAX_RATE_LIMITED_RETRIES} retries; the sync resumes on its next run."
            )
        delay = _retry_after(response)
        if delay is None:
            # Without Retry-After, wait out the window the 429 names.
            policy = _json_or_empty(response).get("policyName", "")
            delay = (
                self.search_limiter.window_seconds
                if policy == "SECONDLY"
                else self.limiter.window_seconds
            )
        logger.warning(
            "HubSpot rate limit on %s %s (attempt %s); retrying in %.1f s",
            method,
            path,
            attempt,
            delay,
        )
        self.clock.sleep(delay)

    def _back_off(self, method: str, path: str, reason: str, attempt: int) -> None:
        if attempt > MAX_SERVER_ERROR_RETRIES:
            raise ConnectorError(
                f"HubSpot request {method} {path} failed {attempt} times, last "
                f"with {reason}."
            )
        delay = float(2 ** (attempt - 1))
        logger.warning(
            "HubSpot request %s %s failed with %s (attempt %s); retrying in %.0f s",
            method,
            path,
            reason,
            attempt,
            delay,
        )
        self.clock.sleep(delay)


def _after_keyset(keyset: Keyset, lower: Keyset | None) -> bool:
    return lower is None or keyset.sort_key() > lower.sort_key()


def _next_after(data: dict) -> str | None:
    after = ((data.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _batch_results(data: dict, linked: dict[str, list[str]]) -> list[dict]:
    """Add the associated ids of a batch read to ``linked``, keyed by the from id.

    Return the inputs that read the next page of an id's associations.
    """
    following = []
    for result in data.get("results") or []:
        from_id = str(result["from"]["id"])
        ids = linked.setdefault(from_id, [])
        ids += [str(target["toObjectId"]) for target in result.get("to") or []]
        after = _next_after(result)
        if after is not None:
            following.append({"id": from_id, "after": after})
    return following


def _batch_failures(data: dict, batch: list[dict], path: str) -> set[str]:
    """Return the ids of ``batch`` whose associations a batch read failed to return.

    An id named in a NO_ASSOCIATIONS_FOUND error has none, and so has an id
    that HubSpot leaves out of both results and errors. Another error names
    its ids in ``context.fromObjectId``. An error that names none fails
    every id of the batch that has no result in ``data``.
    """
    answered = {str(result["from"]["id"]) for result in data.get("results") or []}
    failed: set[str] = set()
    for error in data.get("errors") or []:
        if error.get("subCategory") == NO_ASSOCIATIONS_FOUND:
            continue
        named = (error.get("context") or {}).get("fromObjectId") or []
        ids = {str(i) for i in named} or {
            item["id"] for item in batch if item["id"] not in answered
        }
        logger.warning(
            "HubSpot POST %s failed for ids %s, whose stored links stay: %s",
            path,
            ", ".join(sorted(ids)),
            error.get("message") or error.get("category"),
        )
        failed |= ids
    return failed


def _record(item: dict, requested: tuple[str, ...] | None = None) -> CrmRecord:
    """Convert a v3 object into a record.

    HubSpot leaves an association type with no associated record out of the
    response, so each ``requested`` name missing from ``item`` gets an empty
    list. The writers then clear that link instead of keeping a stale one.
    """
    associations = {name: [] for name in requested or ()}
    for name, value in (item.get("associations") or {}).items():
        associations[name] = [
            str(link["id"]) for link in (value or {}).get("results", [])
        ]
    return CrmRecord(
        id=str(item["id"]),
        modified_at=parse_datetime(item.get("updatedAt")),
        properties=item.get("properties") or {},
        archived=bool(item.get("archived")),
        archived_at=parse_datetime(item.get("archivedAt")),
        associations=associations,
    )


def _history_values(entries: list[dict]) -> list[tuple[str | None, dt.datetime]]:
    """Return (value, timestamp) pairs oldest first. HubSpot lists newest first."""
    values = [
        (entry.get("value"), parse_datetime(entry.get("timestamp")))
        for entry in entries or []
    ]
    return sorted(
        ((value, at) for value, at in values if at is not None), key=lambda v: v[1]
    )


def _pipeline(item: dict) -> PipelineInfo:
    stages = []
    for stage in item.get("stages", []):
        metadata = stage.get("metadata") or {}
        stages.append(
            StageInfo(
                id=str(stage["id"]),
                label=stage.get("label") or str(stage["id"]),
                display_order=int(stage.get("displayOrder") or 0),
                is_closed=str(metadata.get("isClosed", "false")).lower() == "true",
                probability=_probability(metadata.get("probability")),
            )
        )
    return PipelineInfo(
        id=str(item["id"]),
        label=item.get("label") or str(item["id"]),
        display_order=int(item.get("displayOrder") or 0),
        stages=tuple(stages),
    )


def _probability(value: Any) -> Decimal:
    try:
        probability = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0")
    return min(max(probability, Decimal("0")), Decimal("1"))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _json_or_empty(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_message(response: requests.Response) -> str:
    return str(_json_or_empty(response).get("message") or response.reason)
