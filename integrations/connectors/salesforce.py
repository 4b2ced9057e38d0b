"""Salesforce REST API over HTTP, authenticated with an OAuth 2.0 refresh token.

The connection's ``base_url`` is the login host (https://login.salesforce.com,
https://test.salesforce.com for a sandbox, or a My Domain host). The token
endpoint there returns an access token and the ``instance_url`` that every
API request goes to. A 401 with INVALID_SESSION_ID refreshes the token once
and repeats the request. The connection keeps the refreshed token and its
instance URL (integrations.sync), so the next run reuses them until
Salesforce rejects the token. Salesforce's token response names no
lifetime, so that 401 is the only sign of an expired session.

Records are read with SOQL through ``/services/data/vXX.X/query`` and
deleted ones through ``queryAll``. A response with ``done`` false names the
next batch in ``nextRecordsUrl``. Full listings are ordered by Id and their
paging token is the last Id written, because a query locator expires (after
about 15 minutes unused) and a resumed run must not depend on it. Incremental
listings are ordered by (SystemModstamp, Id).

Salesforce limits API requests per organisation per rolling 24 hours and
reports the count in the Sforce-Limit-Info header of every response
(``api-usage=used/limit``). The connector stops before it uses more than
``max_api_usage`` of that budget, and a 403 REQUEST_LIMIT_EXCEEDED stops it
too. Both fail the run, and the next run resumes from the committed cursors.
The sync engine reads the same header as the connection's daily budget, and
with less than 20% of the limit left a run syncs owners and opportunity
changes only (integrations.sync, priority mode).
A rolling-window limiter (our own cap, see REQUEST_LIMIT) spaces requests,
and 429 and 5xx responses are retried as in integrations.connectors.http.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

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

API_VERSION = "v59.0"
# Salesforce returns at most 2,000 records per batch and accepts a
# batchSize between 200 and 2,000 in the Sforce-Query-Options header.
BATCH_SIZE = 2000
# Salesforce documents no short-window request limit for REST, only the
# daily budget. This cap is our own, to spread a sync's requests.
REQUEST_LIMIT = (20, 1.0)
# Share of the organisation's daily API budget a sync may use. The rest is
# left for the organisation's other integrations.
MAX_API_USAGE = 0.9
# Opportunities in Salesforce have no pipeline, so all their stages belong to
# this one pipeline.
PIPELINE_ID = "opportunities"
PIPELINE_LABEL = "Salesforce opportunities"
# Salesforce leads, synced after deals, so that a converted lead finds its
# opportunity, and before the activities, which may point at a lead
# (base.sync_order).
LEADS = "leads"
# Opportunity ids per OpportunityHistory query. 200 ids of 18 characters
# keep the GET request's URL near 5 KB.
HISTORY_IDS_PER_QUERY = 200

_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
# An API field name, or a relationship path such as Account.Industry.
_FIELD_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
# Record ids are 15 case-sensitive or 18 case-insensitive characters.
_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
# The key prefix (the first three characters of a record id) of each object
# an activity's WhoId or WhatId links to, by association name. A WhoId is a
# Contact or a Lead. A WhatId of another object, such as a Case, is ignored.
WHO_PREFIXES = {"contacts": "003", "leads": "00Q"}
WHAT_PREFIXES = {"deals": "006", "companies": "001"}


@dataclass(frozen=True)
class SObjectQuery:
    sobject: str
    fields: tuple[str, ...]
    condition: str = ""
    # Fields that only mergeable objects have, read from deleted records.
    deleted_fields: tuple[str, ...] = ()


TASK_FIELDS = (
    "Subject",
    "TaskSubtype",
    "ActivityDate",
    "CompletedDateTime",
    "OwnerId",
    "WhoId",
    "WhatId",
)
QUERIES = {
    COMPANIES: SObjectQuery(
        "Account",
        ("Name", "Website", "Industry", "BillingCountry", "OwnerId"),
        deleted_fields=("MasterRecordId",),
    ),
    CONTACTS: SObjectQuery(
        "Contact",
        (
            "FirstName",
            "LastName",
            "Email",
            "Phone",
            "Title",
            "AccountId",
            "OwnerId",
            "CreatedDate",
        ),
        deleted_fields=("MasterRecordId",),
    ),
    DEALS: SObjectQuery(
        "Opportunity",
        (
            "Name",
            "Amount",
            "CloseDate",
            "StageName",
            "IsWon",
            "IsClosed",
            "OwnerId",
            "AccountId",
            "CreatedDate",
        ),
    ),
    CALLS: SObjectQuery("Task", TASK_FIELDS, "TaskSubtype = 'Call'"),
    EMAILS: SObjectQuery("Task", TASK_FIELDS, "TaskSubtype IN ('Email', 'ListEmail')"),
    MEETINGS: SObjectQuery(
        "Event", ("Subject", "StartDateTime", "OwnerId", "WhoId", "WhatId")
    ),
    LEADS: SObjectQuery(
        "Lead",
        (
            "FirstName",
            "LastName",
            "Email",
            "Phone",
            "Company",
            "Country",
            "State",
            "Industry",
            "NumberOfEmployees",
            "LeadSource",
            "Status",
            "OwnerId",
            "IsConverted",
            "ConvertedOpportunityId",
            "ConvertedDate",
            "CreatedDate",
        ),
        deleted_fields=("MasterRecordId",),
    ),
}


@dataclass(frozen=True)
class StageHistoryEntry:
    """One OpportunityHistory row: the stage an opportunity entered, and when."""

    id: str
    deal_id: str
    stage: str
    changed_at: dt.datetime
    amount: Decimal | None
    close_date: str | None


@dataclass
class DealRecord(CrmRecord):
    """An opportunity with its OpportunityHistory rows, oldest first."""

    stage_history: list[StageHistoryEntry] = field(default_factory=list)


def parse_datetime(value: str | None) -> dt.datetime | None:
    """Parse a Salesforce dateTime ("2024-03-01T09:00:00.000+0000") or a date."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def soql_datetime(moment: dt.datetime) -> str:
    """Format a SOQL dateTime literal, which has whole seconds only."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class SalesforceConnector(Connector):
    provider = "salesforce"
    # Listed between the deals and the activities (base.sync_order).
    extra_object_types = (LEADS,)
    # Salesforce notes are another object (ContentNote), not synced.
    unsupported_object_types = (NOTES,)

    def __init__(
        self,
        *,
        login_url: str,
        client_id: str,
        refresh_token: str,
        client_secret: str = "",
        access_token: str = "",
        instance_url: str = "",
        api_version: str = API_VERSION,
        max_api_usage: float = MAX_API_USAGE,
        clock: Clock = REAL_CLOCK,
        limiter: RollingWindowLimiter | None = None,
        session: requests.Session | None = None,
    ):
        self.login_url = login_url.rstrip("/")
        self.api_version = api_version
        self.max_api_usage = max_api_usage
        self.clock = clock
        self.batch_size = BATCH_SIZE
        # Fields selected besides QUERIES' own, by object type.
        self.mapped_fields: dict[str, tuple[str, ...]] = {}
        # (used, limit) from the last Sforce-Limit-Info header, if any.
        self.api_usage: tuple[int, int] | None = None
        self._client_id = client_id
        self._client_secret = client_secret
        self.http = RetryingHttp(
            provider_label="Salesforce",
            session=session or requests.Session(),
            limiter=limiter or limiter_for(refresh_token, "requests", *REQUEST_LIMIT),
            clock=clock,
        )
        self.oauth = OAuthRefresher(
            provider_label="Salesforce",
            tokens=OAuthTokens(
                refresh_token=refresh_token,
                access_token=access_token,
                instance_url=instance_url.rstrip("/"),
            ),
            request_token=self._request_token,
        )

    def __repr__(self) -> str:
        return f"<SalesforceConnector {self.login_url}>"

    # Mapped fields

    def mapped_properties_set(
        self, object_type: str, names: list[str]
    ) -> dict[str, str]:
        """Add the fields ``names`` to every query and return the rejected ones.

        The result maps each rejected name to the reason.
        Records keep each field's value under the name as given. A field the
        object lacks fails the listing with Salesforce's INVALID_FIELD error.
        """
        _query(object_type)
        rejected = {
            name: (
                f"{name!r} is not a Salesforce field name. Map the field's API "
                "name, such as Type or Segment__c, or a path such as "
                "Account.Industry."
            )
            for name in names
            if not _FIELD_PATH.fullmatch(name)
        }
        self.mapped_fields[object_type] = tuple(n for n in names if n not in rejected)
        return rejected

    def _fields(self, object_type: str) -> tuple[str, ...]:
        fields = _query(object_type).fields
        # SOQL field names ignore case, and a field selected twice is an error.
        selected = {name.casefold() for name in ("Id", "SystemModstamp", *fields)}
        mapped = self.mapped_fields.get(object_type, ())
        return fields + tuple(n for n in mapped if n.casefold() not in selected)

    def _record(self, object_type: str, item: dict) -> CrmRecord:
        record = _record(object_type, item)
        for name in self.mapped_fields.get(object_type, ()):
            record.properties[name] = _field_text(item, name)
        return record

    # Reads

    def owners(self) -> list[Owner]:
        soql = (
            "SELECT Id, Email, FirstName, LastName, Name FROM User "
            "WHERE IsActive = true ORDER BY Id"
        )
        owners = []
        for batch in self._query_batches(soql):
            for item in batch:
                parts = (item.get("FirstName"), item.get("LastName"))
                name = item.get("Name") or " ".join(p for p in parts if p)
                owners.append(Owner(item["Id"], item.get("Email") or "", name or ""))
        return owners

    def pipelines(self) -> list[PipelineInfo]:
        """Return one pipeline holding every OpportunityStage, inactive ones too.

        Inactive stages are kept because old opportunities can still sit in
        them. A closed stage gets probability 1 when IsWon and 0 otherwise,
        so the sync engine reads won and lost from IsWon whatever
        DefaultProbability the admin set.
        """
        soql = (
            "SELECT Id, ApiName, MasterLabel, IsActive, IsClosed, IsWon, "
            "DefaultProbability, SortOrder FROM OpportunityStage ORDER BY SortOrder"
        )
        stages = []
        for batch in self._query_batches(soql):
            for item in batch:
                stages.append(_stage(item, len(stages)))
        return [PipelineInfo(PIPELINE_ID, PIPELINE_LABEL, 0, tuple(stages))]

    def list_pages(self, object_type: str, after: str | None = None) -> Iterator[Page]:
        """Yield the live records of a type; notes are not synced from Salesforce."""
        if object_type == NOTES:
            return
        query = _query(object_type)
        conditions = [query.condition] if query.condition else []
        if after:
            conditions.append(f"Id > {soql_string(after)}")
        soql = _select(query, self._fields(object_type), conditions, "Id")
        for batch, done in self._query_batches_with_state(soql):
            records = [self._record(object_type, item) for item in batch]
            if object_type == DEALS:
                records = self._with_stage_history(records)
            if done:
                yield Page(records, None)
            elif records:
                yield Page(records, records[-1].id)

    def changed_pages(self, object_type: str, since: Keyset | None) -> Iterator[Page]:
        """Yield records modified after ``since`` in (SystemModstamp, Id) order.

        SOQL dateTime literals have whole seconds, so the query requests
        SystemModstamp >= the second of ``since`` and the records at or before
        the keyset are dropped here. Notes are not synced from Salesforce.
        """
        if object_type == NOTES:
            return
        query = _query(object_type)
        conditions = [query.condition] if query.condition else []
        if since is not None:
            floor = since.modified_at.replace(microsecond=0)
            conditions.append(f"SystemModstamp >= {soql_datetime(floor)}")
        fields = self._fields(object_type)
        soql = _select(query, fields, conditions, "SystemModstamp, Id")
        for batch in self._query_batches(soql):
            records = [self._record(object_type, item) for item in batch]
            fresh = [r for r in records if _after(r, since)]
            if fresh and object_type == DEALS:
                fresh = self._with_stage_history(fresh)
            if fresh:
                yield Page(fresh, None)

    def archived_pages(self, object_type: str) -> Iterator[Page]:
        """Yield deleted records, found with queryAll while in the Recycle Bin.

        Salesforce empties the Recycle Bin after 15 days, so a record deleted
        longer ago than that is no longer listed. A merged Account, Contact
        or Lead is deleted with MasterRecordId naming the surviving record.
        Notes are not synced from Salesforce.
        """
        if object_type == NOTES:
            return
        query = _query(object_type)
        conditions = [query.condition] if query.condition else []
        conditions.append("IsDeleted = true")
        fields = query.deleted_fields
        soql = _select(query, fields, conditions, "Id")
        for batch in self._query_batches(soql, include_deleted=True):
            records = [_deleted_record(item) for item in batch]
            if records:
                yield Page(records, None)

    def fetch_record(self, object_type: str, record_id: str) -> CrmRecord | None:
        """Fetch one live record by id, or return None when the query finds none."""
        query = _query(object_type)
        conditions = [query.condition] if query.condition else []
        conditions.append(f"Id = {soql_string(record_id)}")
        soql = _select(query, self._fields(object_type), conditions, "Id")
        for batch in self._query_batches(soql):
            for item in batch:
                return self._record(object_type, item)
        return None

    def stage_history(self, deal_ids: list[str]) -> list[StageHistoryEntry]:
        """Return the OpportunityHistory rows of the given opportunities.

        Rows come in (OpportunityId, CreatedDate, Id) order, one query per
        HISTORY_IDS_PER_QUERY opportunities.
        """
        entries = []
        for start in range(0, len(deal_ids), HISTORY_IDS_PER_QUERY):
            chunk = deal_ids[start : start + HISTORY_IDS_PER_QUERY]
            ids = ", ".join(soql_string(deal_id) for deal_id in chunk)
            soql = (
                "SELECT Id, OpportunityId, StageName, Amount, CloseDate, CreatedDate "
                f"FROM OpportunityHistory WHERE OpportunityId IN ({ids}) "
                "ORDER BY OpportunityId, CreatedDate, Id"
            )
            for batch in self._query_batches(soql):
                for item in batch:
                    entries.append(
                        StageHistoryEntry(
                            id=item["Id"],
                            deal_id=item["OpportunityId"],
                            stage=item.get("StageName") or "",
                            changed_at=parse_datetime(item.get("CreatedDate")),
                            amount=_decimal(item.get("Amount")),
                            close_date=item.get("CloseDate"),
                        )
                    )
        return entries

    # Write-back of lead owners (integrations.writeback). Each request is
    # sent once: a 429, 5xx or network error raises CrmUnavailable, and the
    # write-back task retries it later.

    def lead_find_by_email(self, email: str) -> CrmRecord | None:
        """Return the most recently modified unconverted Lead with ``email``.

        The record's ``modified_at`` is the Lead's LastModifiedDate, the time
        of the last change by a user, and its owner is under OWNER_PROPERTY.
        Return None when no such Lead exists.
        """
        soql = (
            "SELECT Id, OwnerId, LastModifiedDate FROM Lead "
            f"WHERE Email = {soql_string(email)} AND IsConverted = false "
            "ORDER BY LastModifiedDate, Id"
        )
        path = f"/services/data/{self.api_version}/query"
        response = self._write_back_send("GET", path, params={"q": soql})
        records = (json_or_none(response) or {}).get("records") or []
        if not records:
            return None
        item = records[-1]
        return CrmRecord(
            id=item["Id"],
            modified_at=parse_datetime(item.get("LastModifiedDate")),
            properties={OWNER_PROPERTY: item.get("OwnerId")},
        )

    def lead_owner_update(self, lead_id: str, owner_id: str) -> None:
        """Set a Lead's OwnerId with ``PATCH /sobjects/Lead/{Id}`` (204 No Content)."""
        if not _SALESFORCE_ID.fullmatch(lead_id):
            raise ConnectorError(
                f"Invalid Salesforce Lead id {lead_id!r}: expected 15 or 18 "
                "letters and digits."
            )
        path = f"/services/data/{self.api_version}/sobjects/Lead/{lead_id}"
        self._write_back_send("PATCH", path, json_body={"OwnerId": owner_id})

    def _write_back_send(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json_body: dict | None = None,
    ) -> requests.Response:
        """Send one write-back request, refreshing an expired session once.

        The daily API budget check of the sync is skipped: one write-back
        costs two requests, and Salesforce's own 403 REQUEST_LIMIT_EXCEEDED
        still stops it.
        """
        refreshed = False
        while True:
            instance_url = self._instance_url()
            response = self.http.send_once(
                method,
                instance_url + path,
                params=params,
                json_body=json_body,
                headers=self._api_headers,
                path_for_logs=path,
            )
            self._read_api_usage(response)
            status = response.status_code
            if status == 401 and not refreshed:
                if _error_code(response) == "INVALID_SESSION_ID":
                    logger.info("Salesforce session expired; refreshing the token")
                    self.oauth.refresh_after_rejection(_sent_token(response))
                    refreshed = True
                    continue
            if status == 401:
                raise AuthenticationFailed(
                    "Salesforce rejected the access token (HTTP 401, "
                    f"{_error_code(response) or 'no error code'}). Reconnect "
                    "the Salesforce connection."
                )
            if status >= 400:
                raise ConnectorError(
                    f"Salesforce returned HTTP {status} for {method} {path}: "
                    f"{_error_text(response)}"
                )
            return response

    def _with_stage_history(self, records: list[CrmRecord]) -> list[DealRecord]:
        """Attach each opportunity's OpportunityHistory rows to its record.

        The rows are read right after their opportunities, so a history row
        never reaches the writers before its deal. Salesforce adds a history
        row only when an edit of the opportunity changes its StageName,
        Amount, CloseDate or Probability (Object Reference, OpportunityHistory).
        That edit moves the opportunity's SystemModstamp, so the next
        incremental listing reads the opportunity again with all its rows.
        """
        history: dict[str, list[StageHistoryEntry]] = defaultdict(list)
        for entry in self.stage_history([record.id for record in records]):
            history[entry.deal_id].append(entry)
        return [
            DealRecord(**vars(record), stage_history=history[record.id])
            for record in records
        ]

    # Queries

    def _query_batches(self, soql: str, include_deleted: bool = False):
        for batch, _done in self._query_batches_with_state(soql, include_deleted):
            yield batch

    def _query_batches_with_state(self, soql: str, include_deleted: bool = False):
        """Yield (records, done) for each batch, following nextRecordsUrl."""
        resource = "queryAll" if include_deleted else "query"
        path = f"/services/data/{self.api_version}/{resource}"
        data = self._get(path, params={"q": soql})
        fetched = 0
        while True:
            records = data.get("records") or []
            fetched += len(records)
            done = bool(data.get("done", True))
            yield records, done
            if done:
                total = data.get("totalSize")
                if isinstance(total, int) and fetched != total:
                    raise ConnectorError(
                        f"Salesforce reported {total} records for a query but "
                        f"returned {fetched}; the sync stops rather than miss any."
                    )
                return
            next_url = data.get("nextRecordsUrl")
            if not next_url:
                raise ConnectorError(
                    "Salesforce returned done=false without nextRecordsUrl for "
                    f"a query on {_sobject_of(soql)}."
                )
            data = self._get(next_url)

    # HTTP

    def _get(self, path: str, params: dict | None = None) -> dict:
        refreshed = False
        while True:
            self._check_api_budget()
            instance_url = self._instance_url()
            response = self.http.send(
                "GET",
                instance_url + path,
                params=params,
                headers=self._api_headers,
                path_for_logs=path,
            )
            self._read_api_usage(response)
            if response.status_code == 401:
                if _error_code(response) == "INVALID_SESSION_ID" and not refreshed:
                    logger.info("Salesforce session expired; refreshing the token")
                    self.oauth.refresh_after_rejection(_sent_token(response))
                    refreshed = True
                    continue
                raise AuthenticationFailed(
                    "Salesforce rejected the access token (HTTP 401, "
                    f"{_error_code(response) or 'no error code'}) even after a "
                    "refresh. Reconnect the Salesforce connection."
                )
            if response.status_code == 403 and (
                _error_code(response) == "REQUEST_LIMIT_EXCEEDED"
            ):
                raise ConnectorError(
                    "Salesforce rejected the request because the organisation used "
                    "its daily API request limit (REQUEST_LIMIT_EXCEEDED). The "
                    "sync resumes on a later run."
                )
            if response.status_code >= 400:
                raise ConnectorError(
                    f"Salesforce returned HTTP {response.status_code} for GET "
                    f"{path}: {_error_text(response)}"
                )
            return json_or_none(response) or {}

    def _api_headers(self) -> dict:
        return {
            "Authorization": f"Bearer {self.oauth.access_token()}",
            "Sforce-Query-Options": f"batchSize={self.batch_size}",
        }

    def _instance_url(self) -> str:
        """Return the API address, refreshing first when no session is stored.

        A stored access token without its instance URL is refreshed too,
        because the API address comes only with a token.
        """
        tokens = self.oauth.tokens
        if tokens.access_token and not tokens.instance_url:
            self.oauth.refresh_after_rejection(tokens.access_token)
        self.oauth.access_token()
        instance_url = self.oauth.tokens.instance_url
        if not instance_url:
            raise ConnectorError(
                "Salesforce's token response has no instance_url, so the "
                "connector does not know where to send API requests."
            )
        return instance_url

    def _request_token(self, refresh_token: str) -> requests.Response:
        data = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "refresh_token": refresh_token,
        }
        if self._client_secret:
            data["client_secret"] = self._client_secret
        return self.http.send(
            "POST",
            self.login_url + "/services/oauth2/token",
            data=data,
            headers=lambda: {"Accept": "application/json"},
            path_for_logs="/services/oauth2/token",
        )

    def reported_api_usage(self, response: requests.Response) -> tuple[int, int] | None:
        """Return (used, limit) from the response's Sforce-Limit-Info header.

        The sync engine keeps the last value as the connection's daily
        budget (integrations.api_usage). Return None without the header.
        """
        match = _API_USAGE.search(response.headers.get("Sforce-Limit-Info") or "")
        if match is None:
            return None
        return int(match.group(1)), int(match.group(2))

    def _read_api_usage(self, response: requests.Response) -> None:
        usage = self.reported_api_usage(response)
        if usage is not None:
            self.api_usage = usage

    def _check_api_budget(self) -> None:
        if self.api_usage is None:
            return
        used, limit = self.api_usage
        if limit and used >= limit * self.max_api_usage:
            raise ConnectorError(
                f"Salesforce API usage is {used} of {limit} daily requests, at or "
                f"above the {self.max_api_usage:.0%} this sync may use. The sync "
                "stops and resumes on a later run."
            )


def _query(object_type: str) -> SObjectQuery:
    try:
        return QUERIES[object_type]
    except KeyError:
        raise ConnectorError(
            f"Unknown Salesforce object type {object_type!r}: expected one of "
            f"{', '.join(QUERIES)}."
        ) from None


def _select(
    query: SObjectQuery, fields: tuple[str, ...], conditions: list[str], order: str
) -> str:
    columns = ", ".join(("Id", "SystemModstamp", *fields))
    soql = f"SELECT {columns} FROM {query.sobject}"
    if conditions:
        soql += " WHERE " + " AND ".join(f"({c})" for c in conditions)
    return f"{soql} ORDER BY {order}"


def _sobject_of(soql: str) -> str:
    match = re.search(r"\bFROM\s+(\w+)", soql, re.IGNORECASE)
    return match.group(1) if match else "an unknown object"


def _after(record: CrmRecord, since: Keyset | None) -> bool:
    if since is None:
        return True
    return keyset_sort_key(record.modified_at, record.id) > since.sort_key()


def _record(object_type: str, item: dict) -> CrmRecord:
    """Convert a SOQL row into a record with the property names the writers read."""
    properties: dict[str, str | None]
    associations: dict[str, list[str]] = {}
    if object_type == COMPANIES:
        properties = {
            "name": item.get("Name"),
            "domain": _domain(item.get("Website")),
            "industry": item.get("Industry"),
            "country": item.get("BillingCountry"),
        }
    elif object_type == CONTACTS:
        properties = {
            "firstname": item.get("FirstName"),
            "lastname": item.get("LastName"),
            "email": item.get("Email"),
            "phone": item.get("Phone"),
            "jobtitle": item.get("Title"),
            "associatedcompanyid": item.get("AccountId"),
            "createdate": item.get("CreatedDate"),
        }
    elif object_type == DEALS:
        amount = item.get("Amount")
        properties = {
            "dealname": item.get("Name"),
            "amount": None if amount is None else str(amount),
            "pipeline": PIPELINE_ID,
            "dealstage": item.get("StageName"),
            "closedate": item.get("CloseDate"),
            "createdate": item.get("CreatedDate"),
            "is_won": _flag(item.get("IsWon")),
            "is_closed": _flag(item.get("IsClosed")),
        }
        account = item.get("AccountId")
        associations["companies"] = [account] if account else []
    elif object_type in (CALLS, EMAILS):
        subject = "hs_call_title" if object_type == CALLS else "hs_email_subject"
        properties = {
            subject: item.get("Subject"),
            "hs_timestamp": item.get("CompletedDateTime") or item.get("ActivityDate"),
        }
        associations = _activity_links(item)
    elif object_type == MEETINGS:
        properties = {
            "hs_meeting_title": item.get("Subject"),
            "hs_timestamp": item.get("StartDateTime"),
        }
        associations = _activity_links(item)
    else:
        properties = {
            key: None if value is None else str(value)
            for key, value in item.items()
            if key not in ("attributes", "Id", "SystemModstamp")
        }
    properties[OWNER_PROPERTY] = item.get("OwnerId")
    return CrmRecord(
        id=item["Id"],
        modified_at=parse_datetime(item.get("SystemModstamp")),
        properties=properties,
        associations=associations,
    )


def _activity_links(item: dict) -> dict[str, list[str]]:
    """Return a Task's or Event's WhoId and WhatId by association name.

    Every name gets a list, empty unless the id has that name's prefix, so
    the writers clear a link the activity no longer has.
    """
    links: dict[str, list[str]] = {}
    for field_name, prefixes in (("WhoId", WHO_PREFIXES), ("WhatId", WHAT_PREFIXES)):
        record_id = item.get(field_name) or ""
        for name, prefix in prefixes.items():
            links[name] = [record_id] if record_id.startswith(prefix) else []
    return links


def _field_text(item: dict, path: str) -> str | None:
    """Return the value of a field or relationship path of a SOQL row, as text.

    Keys are matched ignoring case, as SOQL matches field names. A missing
    key or an empty relationship gives None.
    """
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        by_name = {key.casefold(): key for key in value}
        key = by_name.get(part.casefold())
        value = value[key] if key is not None else None
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _deleted_record(item: dict) -> CrmRecord:
    modified = parse_datetime(item.get("SystemModstamp"))
    properties = {}
    if "MasterRecordId" in item:
        properties["master_record_id"] = item.get("MasterRecordId")
    return CrmRecord(
        id=item["Id"],
        modified_at=modified,
        properties=properties,
        archived=True,
        archived_at=modified,
    )


def _stage(item: dict, order: int) -> StageInfo:
    closed = bool(item.get("IsClosed"))
    if closed:
        probability = Decimal(1) if item.get("IsWon") else Decimal(0)
    else:
        percent = _decimal(item.get("DefaultProbability")) or Decimal(0)
        probability = min(max(percent / 100, Decimal(0)), Decimal(1))
    return StageInfo(
        id=item.get("ApiName") or item["Id"],
        label=item.get("MasterLabel") or item.get("ApiName") or item["Id"],
        display_order=int(item.get("SortOrder") or order),
        is_closed=closed,
        probability=probability,
    )


def _domain(website: str | None) -> str | None:
    """Return the host of a Website ("https://www.acme.com/x" gives acme.com)."""
    if not website:
        return None
    parsed = urlparse(website if "//" in website else f"//{website}")
    host = (parsed.hostname or "").lower()
    return host.removeprefix("www.") or None


def _flag(value: Any) -> str | None:
    if value is None:
        return None
    return "true" if value else "false"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _errors(response: requests.Response) -> list[dict]:
    body = json_or_none(response)
    if isinstance(body, list):
        return [e for e in body if isinstance(e, dict)]
    if isinstance(body, dict):
        return [body]
    return []


def _sent_token(response: requests.Response) -> str:
    """Return the bearer token the request of ``response`` carried."""
    header = response.request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ")


def _error_code(response: requests.Response) -> str:
    for error in _errors(response):
        if error.get("errorCode"):
            return str(error["errorCode"])
    return ""


def _error_text(response: requests.Response) -> str:
    parts = [
        f"{e.get('errorCode', '')}: {e.get('message', '')}".strip(": ")
        for e in _errors(response)
    ]
    return "; ".join(p for p in parts if p) or response.reason or "no message"
