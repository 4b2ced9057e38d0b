"""Pipedrive API v1 over HTTP, with an API token or OAuth 2.

An API token travels in the ``x-api-token`` header, as Pipedrive's
authentication guide requires, and an OAuth token as a bearer header. Neither
is put in a URL, so request logs (urllib3 logs URLs at DEBUG) hold no token.
With a refresh token, the connector renews the OAuth access token with
``POST https://oauth.pipedrive.com/oauth/token`` (HTTP Basic auth with the
app's client id and secret, form body grant_type=refresh_token). It does so
when the token's ``expires_in`` has run out, and once after a 401 before
repeating the request. An OAuth access token without a refresh token is
sent until Pipedrive rejects it.
The connection's ``base_url`` is the company's API address, for example
https://acme.pipedrive.com/api.

Listings page with ``start`` and ``limit`` (at most 500) and go on while
``additional_data.pagination.more_items_in_collection`` is true, from
``next_start``. Incremental listings use ``GET /v1/recents``, which returns
the items changed since a UTC time with whole seconds. The connector reads
every page of it, keeps the newest version of each item, and sorts them by
(update_time, id) before yielding, so the keyset order is kept whatever
order the server returns. Pipedrive keeps deleted deals for 30 days and lists them
with ``status=deleted``. Merged deals and persons are deleted the same way,
and the merged-away record's activities and deals move to the survivor.

Pipedrive stages carry no outcome. A deal's ``status`` (open, won, lost)
tells whether it is won, so each pipeline gets two closed stages, "Won" and
"Lost", and won or lost deals are mapped to them.

Rate limits are per token over a rolling 2-second window. The default
limiter allows 20 requests per 2 s with an API token and 80 with an OAuth
token, the lowest plan's limits in Pipedrive's rate-limiting guide. When a
response says ``x-ratelimit-remaining: 0``, the connector waits
``x-ratelimit-reset`` seconds before its next request.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable, Iterator
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
    OWNER_PROPERTY,
    AuthenticationFailed,
    Connector,
    ConnectorError,
    CrmRecord,
    Keyset,
    OAuthTokens,
    Owner,
    Page,
    PipelineInfo,
    StageInfo,
    keyset_sort_key,
)
from integrations.connectors.http import OAuthRefresher, RetryingHttp, json_or_none
from integrations.connectors.ratelimit import (
    REAL_CLOCK,
    Clock,
    RollingWindowLimiter,
    limiter_for,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
API_TOKEN_LIMIT = (20, 2.0)
OAUTH_TOKEN_LIMIT = (80, 2.0)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Pipedrive's OAuth server, where access tokens are refreshed.
OAUTH_TOKEN_URL = "https://oauth.pipedrive.com/oauth/token"

# object type -> (list endpoint, recents item name, activity type)
ENDPOINTS = {
    COMPANIES: ("/v1/organizations", "organization", None),
    CONTACTS: ("/v1/persons", "person", None),
    DEALS: ("/v1/deals", "deal", None),
    CALLS: ("/v1/activities", "activity", "call"),
    EMAILS: ("/v1/activities", "activity", "email"),
    MEETINGS: ("/v1/activities", "activity", "meeting"),
}
WON_SUFFIX = ":won"
LOST_SUFFIX = ":lost"


def parse_datetime(value: str | None) -> dt.datetime | None:
    """Parse a Pipedrive time ("2024-03-01 09:00:00", always UTC)."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def pipedrive_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def won_stage_id(pipeline_id: str) -> str:
    return f"{pipeline_id}{WON_SUFFIX}"


def lost_stage_id(pipeline_id: str) -> str:
    return f"{pipeline_id}{LOST_SUFFIX}"


class PipedriveConnector(Connector):
    provider = "pipedrive"
    # Pipedrive's notes (/v1/notes) are not synced.
    unsupported_object_types = (NOTES,)

    def __init__(
        self,
        *,
        base_url: str,
        api_token: str = "",
        access_token: str = "",
        client_id: str = "",
        client_secret: str = "",
        refresh_token: str = "",
        access_token_expires_at: float | None = None,
        token_url: str = OAUTH_TOKEN_URL,
        clock: Clock = REAL_CLOCK,
        limiter: RollingWindowLimiter | None = None,
        session: requests.Session | None = None,
    ):
        """Connect with ``api_token``, or with OAuth 2.

        With ``refresh_token`` set, ``access_token`` is the stored OAuth access
        token (empty when none is stored yet), ``access_token_expires_at`` its
        expiry as a Unix time, and ``token_url`` the address that refreshes it.
        """
        oauth = bool(access_token or refresh_token)
        if bool(api_token) == oauth:
            raise ConnectorError(
                "A Pipedrive connection needs exactly one of api_token and "
                "access_token (or refresh_token) in its credentials."
            )
        self.base_url = base_url.rstrip("/")
        self._api_token = api_token
        self._access_token = access_token
        self._token_url = token_url
        self._basic_auth = "Basic " + base64.b64encode(
            f"{client_id}:{client_secret}".encode()
        ).decode("ascii")
        self.clock = clock
        self.page_size = PAGE_SIZE
        # Mapped name (a field key or name) -> deal field, see mapped_properties_set.
        self.mapped_deal_fields: dict[str, DealField] = {}
        # OAuth access tokens change with each refresh, so the limiter of a
        # refreshing connection is keyed by its refresh token.
        token = api_token or refresh_token or access_token
        default_limit = API_TOKEN_LIMIT if api_token else OAUTH_TOKEN_LIMIT
        self.http = RetryingHttp(
            provider_label="Pipedrive",
            session=session or requests.Session(),
            limiter=limiter or limiter_for(token, "requests", *default_limit),
            clock=clock,
        )
        self.oauth: OAuthRefresher | None = None
        if refresh_token:
            self.oauth = OAuthRefresher(
                provider_label="Pipedrive",
                tokens=OAuthTokens(
                    refresh_token=refresh_token,
                    access_token=access_token,
                    expires_at=access_token_expires_at,
                ),
                request_token=self._request_token,
            )

    def __repr__(self) -> str:
        return f"<PipedriveConnector {self.base_url}>"

    # Mapped deal fields

    def deal_fields(self) -> list[DealField]:
        """Return every deal field, standard and custom, from /v1/dealFields."""
        fields = []
        for items in self._paged("/v1/dealFields", {}):
            fields.extend(DealField.from_item(item) for item in items)
        return fields

    def mapped_properties_set(
        self, object_type: str, names: list[str]
    ) -> dict[str, str]:
        """Add the deal fields ``names`` to deal reads and return the rejected ones.

        The result maps each rejected name to the reason.
        A name is a field key, such as a custom field's 40-character hash, or
        a field name, ignoring case. Records keep each value under the name as
        given, with enum and set option ids replaced by their labels.
        """
        if object_type != DEALS:
            return {
                name: "Only deal fields of Pipedrive can be mapped." for name in names
            }
        fields = self.deal_fields()
        by_key = {field.key: field for field in fields}
        by_name: dict[str, list[DealField]] = {}
        for field in fields:
            by_name.setdefault(field.name.casefold(), []).append(field)
        rejected = {}
        self.mapped_deal_fields = {}
        for name in names:
            matches = [by_key[name]] if name in by_key else by_name.get(name.casefold())
            if not matches:
                rejected[name] = (
                    f"Pipedrive has no deal field with the key or name {name!r}. "
                    "Map the field's key or its exact name."
                )
            elif len(matches) > 1:
                keys = ", ".join(field.key for field in matches)
                rejected[name] = (
                    f"{len(matches)} Pipedrive deal fields are named {name!r} "
                    f"(keys {keys}). Map one of them by its key."
                )
            else:
                self.mapped_deal_fields[name] = matches[0]
        return rejected

    def _record(self, object_type: str, item: dict) -> CrmRecord:
        record = _record(object_type, item)
        if object_type == DEALS:
            for name, field in self.mapped_deal_fields.items():
                record.properties[name] = field.text(item.get(field.key))
        return record

    # Reads

    def owners(self) -> list[Owner]:
        data = self._get("/v1/users")
        return [
            Owner(str(item["id"]), item.get("email") or "", item.get("name") or "")
            for item in data.get("data") or []
            if item.get("active_flag", True)
        ]

    def pipelines(self) -> list[PipelineInfo]:
        pipelines = self._get("/v1/pipelines").get("data") or []
        stages = []
        for page in self._paged("/v1/stages", {}):
            stages.extend(page)
        by_pipeline: dict[str, list[dict]] = {}
        for stage in stages:
            by_pipeline.setdefault(str(stage.get("pipeline_id")), []).append(stage)
        result = []
        for order, item in enumerate(pipelines):
            pipeline_id = str(item["id"])
            result.append(
                PipelineInfo(
                    id=pipeline_id,
                    label=item.get("name") or pipeline_id,
                    display_order=int(item.get("order_nr") or order),
                    stages=_stages(pipeline_id, by_pipeline.get(pipeline_id, [])),
                )
            )
        return result

    def list_pages(self, object_type: str, after: str | None = None) -> Iterator[Page]:
        """Yield the live records page by page; ``after`` is a ``start`` offset.

        NOTE: offsets shift when a record is deleted during a listing, so a
        resumed full listing can skip one record. The next full sync finds it.
        Notes are not synced from Pipedrive.
        """
        if object_type == NOTES:
            return
        path, _item, activity_type = _endpoint(object_type)
        params: dict[str, Any] = {}
        if object_type in (COMPANIES, CONTACTS, DEALS):
            params["sort"] = "id ASC"
        if activity_type:
            # user_id=0 lists every user's activities, not only the token's.
            params.update({"type": activity_type, "user_id": 0})
        start = int(after or 0)
        for items, next_start in self._paged(path, params, start, with_next=True):
            records = [self._record(object_type, item) for item in items]
            yield Page(records, None if next_start is None else str(next_start))

    def changed_pages(self, object_type: str, since: Keyset | None) -> Iterator[Page]:
        """Yield the records changed after ``since``, read from /v1/recents.

        The query starts one second before ``since`` because Pipedrive
        documents "changes after the given timestamp" with whole seconds.
        Deleted deals are left to ``archived_pages``. Notes are not synced
        from Pipedrive.
        """
        if object_type == NOTES:
            return
        _path, item_name, activity_type = _endpoint(object_type)
        lower = (since.modified_at if since else EPOCH) - dt.timedelta(seconds=1)
        params = {
            "since_timestamp": pipedrive_timestamp(lower),
            "items": item_name,
        }
        latest: dict[str, CrmRecord] = {}
        for items in self._paged("/v1/recents", params):
            for entry in items:
                if entry.get("item") != item_name or not entry.get("data"):
                    continue
                data = entry["data"]
                if activity_type and data.get("type") != activity_type:
                    continue
                if _is_deleted(data):
                    continue
                record = self._record(object_type, data)
                if since is not None and not _after(record, since):
                    continue
                known = latest.get(record.id)
                if known is None or record.keyset.sort_key() > known.keyset.sort_key():
                    latest[record.id] = record
        ordered = sorted(latest.values(), key=lambda r: r.keyset.sort_key())
        for start in range(0, len(ordered), self.page_size):
            yield Page(ordered[start : start + self.page_size], None)

    def archived_pages(self, object_type: str) -> Iterator[Page]:
        """Yield deleted deals. Pipedrive's v1 API lists no other deleted records."""
        if object_type != DEALS:
            return
        params = {"status": "deleted", "sort": "id ASC"}
        for items in self._paged("/v1/deals", params):
            records = []
            for item in items:
                record = _record(DEALS, item)
                record.archived = True
                record.archived_at = record.modified_at
                records.append(record)
            if records:
                yield Page(records, None)

    def fetch_record(self, object_type: str, record_id: str) -> CrmRecord | None:
        """Fetch one record by id, or return None when Pipedrive responds 404.

        A deleted deal is returned with ``archived`` set, as in ``archived_pages``.
        """
        path, _item, _activity_type = _endpoint(object_type)
        if not record_id.isdigit():
            raise ConnectorError(
                f"Invalid Pipedrive record id {record_id!r}: expected digits."
            )
        item_path = f"{path}/{record_id}"
        response = self._authorized(
            lambda: self.http.send(
                "GET",
                self.base_url + item_path,
                headers=self._headers,
                path_for_logs=item_path,
            )
        )
        if response.status_code == 404:
            return None
        self._respect_remaining(response)
        if response.status_code == 401:
            raise AuthenticationFailed(
                "Pipedrive rejected the token (HTTP 401). Enter a valid API token "
                "or reconnect OAuth for this connection."
            )
        body = json_or_none(response)
        if (
            response.status_code >= 400
            or not isinstance(body, dict)
            or not isinstance(body.get("data"), dict)
        ):
            raise ConnectorError(
                f"Pipedrive returned HTTP {response.status_code} for GET "
                f"{item_path}: {_error_text(response)}"
            )
        record = self._record(object_type, body["data"])
        if object_type == DEALS and _is_deleted(body["data"]):
            record.archived = True
            record.archived_at = record.modified_at
        return record

    # Write-back of person owners (integrations.writeback). Each request is
    # sent once: a 429, 5xx or network error raises CrmUnavailable, and the
    # write-back task retries it later.

    def person_find_by_email(self, email: str) -> CrmRecord | None:
        """Return the person whose email is exactly ``email``, or None.

        Searches with ``GET /v1/persons/search`` (``fields=email``,
        ``exact_match``, not case-sensitive), then reads the first match with
        ``GET /v1/persons/{id}`` for its ``update_time`` and ``owner_id``.
        """
        params = {
            "term": email,
            "fields": "email",
            "exact_match": "true",
            "limit": 1,
        }
        body = self._write_back_send("GET", "/v1/persons/search", params=params)
        items = (body.get("data") or {}).get("items") or []
        if not items:
            return None
        person_id = str((items[0].get("item") or {}).get("id") or "")
        if not person_id.isdigit():
            raise ConnectorError(
                f"Pipedrive's person search for {email} returned an item without "
                "a numeric id."
            )
        body = self._write_back_send("GET", f"/v1/persons/{person_id}")
        return _record(CONTACTS, body.get("data") or {"id": person_id})

    def person_owner_update(self, person_id: str, owner_id: str) -> None:
        """Set a person's owner with ``PUT /v1/persons/{id}`` and ``owner_id``."""
        if not person_id.isdigit() or not owner_id.isdigit():
            raise ConnectorError(
                f"Invalid Pipedrive person {person_id!r} or owner {owner_id!r}: "
                "expected digits."
            )
        self._write_back_send(
            "PUT", f"/v1/persons/{person_id}", json_body={"owner_id": int(owner_id)}
        )

    def _write_back_send(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json_body: dict | None = None,
    ) -> dict:
        response = self._authorized(
            lambda: self.http.send_once(
                method,
                self.base_url + path,
                params=params,
                json_body=json_body,
                headers=self._headers,
                path_for_logs=path,
            )
        )
        self._respect_remaining(response)
        status = response.status_code
        if status == 401:
            raise AuthenticationFailed(
                "Pipedrive rejected the token (HTTP 401). Enter a valid API token "
                "or reconnect OAuth for this connection."
            )
        body = json_or_none(response)
        if status >= 400 or not isinstance(body, dict) or body.get("success") is False:
            raise ConnectorError(
                f"Pipedrive returned HTTP {status} for {method} {path}: "
                f"{_error_text(response)}"
            )
        return body

    # Paging and HTTP

    def _paged(self, path: str, params: dict, start: int = 0, with_next=False):
        """Yield the ``data`` of each page, with its next start if ``with_next``."""
        while True:
            query = {**params, "start": start, "limit": self.page_size}
            body = self._get(path, query)
            pagination = (body.get("additional_data") or {}).get("pagination") or {}
            more = bool(pagination.get("more_items_in_collection"))
            next_start = pagination.get("next_start") if more else None
            if more and next_start is None:
                raise ConnectorError(
                    f"Pipedrive reported more items on {path} but no next_start; "
                    "the listing cannot continue."
                )
            items = body.get("data") or []
            yield (items, next_start) if with_next else items
            if next_start is None:
                return
            start = int(next_start)

    def _get(self, path: str, params: dict | None = None) -> dict:
        response = self._authorized(
            lambda: self.http.send(
                "GET",
                self.base_url + path,
                params=params,
                headers=self._headers,
                path_for_logs=path,
            )
        )
        self._respect_remaining(response)
        status = response.status_code
        if status == 401:
            raise AuthenticationFailed(
                "Pipedrive rejected the token (HTTP 401). Enter a valid API token "
                "or reconnect OAuth for this connection."
            )
        if status >= 400:
            raise ConnectorError(
                f"Pipedrive returned HTTP {status} for GET {path}: "
                f"{_error_text(response)}"
            )
        body = json_or_none(response)
        if not isinstance(body, dict) or body.get("success") is False:
            raise ConnectorError(
                f"Pipedrive returned an unsuccessful response for GET {path}: "
                f"{_error_text(response)}"
            )
        return body

    def _headers(self) -> dict:
        if self.oauth is not None:
            return {"Authorization": f"Bearer {self.oauth.access_token()}"}
        if self._access_token:
            return {"Authorization": f"Bearer {self._access_token}"}
        return {"x-api-token": self._api_token}

    def _authorized(self, send: Callable[[], requests.Response]) -> requests.Response:
        """Return ``send()``'s response, after one refresh and resend on a 401.

        Only a connection with a refresh token refreshes. Any other 401 goes
        back to the caller.
        """
        response = send()
        if response.status_code != 401 or self.oauth is None:
            return response
        self._respect_remaining(response)
        sent = response.request.headers.get("Authorization", "")
        logger.info("Pipedrive rejected the OAuth access token; refreshing it")
        self.oauth.refresh_after_rejection(sent.removeprefix("Bearer "))
        return send()

    def _request_token(self, refresh_token: str) -> requests.Response:
        """Send Pipedrive's refresh request to the token URL."""
        return self.http.send(
            "POST",
            self._token_url,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers=lambda: {
                "Accept": "application/json",
                "Authorization": self._basic_auth,
            },
            path_for_logs="OAuth token refresh",
        )

    def _respect_remaining(self, response: requests.Response) -> None:
        """Wait out the window when the response reports no request left in it."""
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is None or remaining.strip() != "0":
            return
        try:
            delay = max(float(response.headers.get("x-ratelimit-reset") or 0), 0.0)
        except ValueError:
            delay = self.http.limiter.window_seconds
        if delay:
            logger.info("Pipedrive rate-limit window used up; waiting %.1f s", delay)
            self.clock.sleep(delay)


def _endpoint(object_type: str) -> tuple[str, str, str | None]:
    try:
        return ENDPOINTS[object_type]
    except KeyError:
        raise ConnectorError(
            f"Unknown Pipedrive object type {object_type!r}: expected one of "
            f"{', '.join(ENDPOINTS)}."
        ) from None


def _stages(pipeline_id: str, items: list[dict]) -> tuple[StageInfo, ...]:
    ordered = sorted(items, key=lambda s: (int(s.get("order_nr") or 0), s["id"]))
    stages = [
        StageInfo(
            id=str(item["id"]),
            label=item.get("name") or str(item["id"]),
            display_order=index,
            is_closed=False,
            probability=_probability(item.get("deal_probability")),
        )
        for index, item in enumerate(ordered)
    ]
    end = len(stages)
    stages.append(StageInfo(won_stage_id(pipeline_id), "Won", end, True, Decimal(1)))
    stages.append(
        StageInfo(lost_stage_id(pipeline_id), "Lost", end + 1, True, Decimal(0))
    )
    return tuple(stages)


def _probability(percent: Any) -> Decimal:
    try:
        value = Decimal(str(percent)) / 100
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return min(max(value, Decimal(0)), Decimal(1))


def _is_deleted(data: dict) -> bool:
    return (
        data.get("status") == "deleted"
        or data.get("deleted") is True
        or data.get("active_flag") is False
    )


def _after(record: CrmRecord, since: Keyset) -> bool:
    return keyset_sort_key(record.modified_at, record.id) > since.sort_key()


@dataclass(frozen=True)
class DealField:
    """One deal field of /v1/dealFields: its key in deal data, name and type."""

    key: str
    name: str
    field_type: str
    # Option id (as text) -> label, for enum and set fields.
    options: dict[str, str]

    @classmethod
    def from_item(cls, item: dict) -> DealField:
        options = {
            str(option.get("id")): str(option.get("label") or "")
            for option in item.get("options") or []
            if isinstance(option, dict)
        }
        return cls(
            key=str(item.get("key") or ""),
            name=str(item.get("name") or ""),
            field_type=str(item.get("field_type") or ""),
            options=options,
        )

    def text(self, value: Any) -> str | None:
        """Return a deal's value of this field as text, with option labels."""
        if value is None or value == "":
            return None
        if self.field_type in ("enum", "set") and self.options:
            ids = [part.strip() for part in str(value).split(",") if part.strip()]
            return ", ".join(self.options.get(option, option) for option in ids)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            name = value.get("name")
            return str(name) if name else _ref_id(value)
        if isinstance(value, list):
            return ", ".join(str(part) for part in value)
        return str(value)


def _ref_id(value: Any) -> str | None:
    """Return the id of a reference, which v1 sends as an int or an object."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("value", value.get("id"))
        if value is None:
            return None
    return str(value)


def _primary(values: Any) -> str | None:
    """Return the primary entry of a person's email or phone list."""
    if isinstance(values, str):
        return values or None
    if not isinstance(values, list):
        return None
    entries = [v for v in values if isinstance(v, dict) and v.get("value")]
    primary = [v for v in entries if v.get("primary")]
    chosen = (primary or entries)[:1]
    return chosen[0]["value"] if chosen else None


def _iso(value: str | None) -> str | None:
    moment = parse_datetime(value)
    return moment.isoformat() if moment else None


def _record(object_type: str, item: dict) -> CrmRecord:
    """Convert a v1 item into a record with the property names the writers read."""
    associations: dict[str, list[str]] = {}
    if object_type == COMPANIES:
        properties = {
            "name": item.get("name"),
            "country": item.get("address_country"),
            OWNER_PROPERTY: _ref_id(item.get("owner_id")),
        }
    elif object_type == CONTACTS:
        properties = {
            "firstname": item.get("first_name"),
            "lastname": item.get("last_name"),
            "email": _primary(item.get("email")),
            "phone": _primary(item.get("phone")),
            "jobtitle": item.get("job_title"),
            "associatedcompanyid": _ref_id(item.get("org_id")),
            "createdate": _iso(item.get("add_time")),
            OWNER_PROPERTY: _ref_id(item.get("owner_id")),
        }
    elif object_type == DEALS:
        properties = _deal_properties(item)
        org = _ref_id(item.get("org_id"))
        associations["companies"] = [org] if org else []
    else:
        subject = {
            CALLS: "hs_call_title",
            EMAILS: "hs_email_subject",
            MEETINGS: "hs_meeting_title",
        }[object_type]
        properties = {
            subject: item.get("subject"),
            "hs_timestamp": _activity_time(item),
            OWNER_PROPERTY: _ref_id(item.get("user_id")),
            "deal_id": _ref_id(item.get("deal_id")),
            "person_id": _ref_id(item.get("person_id")),
            "org_id": _ref_id(item.get("org_id")),
        }
        # List and recents responses always carry these three fields, null
        # when unlinked, so every run sets or clears the activity's links.
        links = {
            "deals": properties["deal_id"],
            "contacts": properties["person_id"],
            "companies": properties["org_id"],
        }
        for name, linked_id in links.items():
            associations[name] = [linked_id] if linked_id else []
    return CrmRecord(
        id=str(item["id"]),
        modified_at=parse_datetime(item.get("update_time") or item.get("add_time")),
        properties=properties,
        associations=associations,
    )


def _deal_properties(item: dict) -> dict[str, str | None]:
    pipeline_id = _ref_id(item.get("pipeline_id")) or ""
    status = item.get("status") or "open"
    if status == "won":
        stage = won_stage_id(pipeline_id)
        close = _iso(item.get("won_time") or item.get("close_time"))
    elif status == "lost":
        stage = lost_stage_id(pipeline_id)
        close = _iso(item.get("lost_time") or item.get("close_time"))
    else:
        stage = _ref_id(item.get("stage_id"))
        close = item.get("expected_close_date")
    value = item.get("value")
    return {
        "dealname": item.get("title"),
        "amount": None if value is None else str(value),
        "deal_currency_code": item.get("currency"),
        "pipeline": pipeline_id,
        "dealstage": stage,
        "status": status,
        "pipedrive_stage_id": _ref_id(item.get("stage_id")),
        "closedate": close,
        "createdate": _iso(item.get("add_time")),
        OWNER_PROPERTY: _ref_id(item.get("user_id")),
    }


def _activity_time(item: dict) -> str | None:
    """Return an activity's due date and time (UTC), or its date alone."""
    due_date = item.get("due_date")
    if not due_date:
        return _iso(item.get("marked_as_done_time") or item.get("add_time"))
    due_time = item.get("due_time") or ""
    if not due_time:
        return due_date
    return f"{due_date}T{due_time}:00+00:00"


def _error_text(response: requests.Response) -> str:
    body = json_or_none(response)
    if isinstance(body, dict):
        message = body.get("error") or body.get("message")
        info = body.get("error_info")
        if message:
            return f"{message} ({info})" if info else str(message)
    return response.reason or "no message"
