"""An in-memory Salesforce org on 127.0.0.1 for the connector and sync tests.

It serves what the connector uses, written from Salesforce's REST API
Developer Guide:

- ``POST /services/oauth2/token`` with ``grant_type=refresh_token``, which
  returns ``access_token`` and ``instance_url``. A wrong client or refresh
  token gets 400 ``invalid_grant``.
- ``GET /services/data/vXX.X/query`` and ``queryAll`` with a SOQL ``q``. The
  response is ``{totalSize, done, nextRecordsUrl, records}`` and each record
  has ``attributes`` ``{type, url}``. Batches follow ``Sforce-Query-Options:
  batchSize=n`` (200 to 2,000), and ``max_batch_size`` lowers them for tests.
  ``query`` hides deleted rows and ``queryAll`` includes them.
- The SOQL subset the connector writes: a field list, one object, a WHERE
  clause of comparisons, IN lists, AND, OR and brackets, ORDER BY and LIMIT.
  A field the object lacks gets 400 INVALID_FIELD, as in Salesforce.

Sessions can be expired (401 INVALID_SESSION_ID). Every API response carries
``Sforce-Limit-Info: api-usage=used/limit``, and a request over the limit gets
403 REQUEST_LIMIT_EXCEEDED. Failures (429 with Retry-After, 5xx, 401) can be
injected. Opportunities get OpportunityHistory rows on insert and on each
change of StageName, Amount or CloseDate, and deleting an opportunity deletes
its history rows too. Merges delete the losing record with MasterRecordId set
and move its children to the master, as Salesforce's merge does. Converting a
lead creates its opportunity and sets ConvertedOpportunityId.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import re
import threading
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from tests.integrations.fake_hubspot import SimulatedClock

COMMON_FIELDS = {"Id", "IsDeleted", "SystemModstamp", "CreatedDate"}
SCHEMA = {
    "User": {"Email", "FirstName", "LastName", "Name", "IsActive"},
    "OpportunityStage": {
        "ApiName",
        "MasterLabel",
        "IsActive",
        "IsClosed",
        "IsWon",
        "DefaultProbability",
        "SortOrder",
    },
    "Account": {
        "Name",
        "Website",
        "Industry",
        "BillingCountry",
        "OwnerId",
        "MasterRecordId",
    },
    "Contact": {
        "FirstName",
        "LastName",
        "Email",
        "Phone",
        "Title",
        "AccountId",
        "OwnerId",
        "MasterRecordId",
    },
    "Lead": {
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
        "IsConverted",
        "ConvertedOpportunityId",
        "ConvertedAccountId",
        "ConvertedDate",
        "OwnerId",
        "MasterRecordId",
    },
    "Opportunity": {
        "Name",
        "Amount",
        "CloseDate",
        "StageName",
        "IsWon",
        "IsClosed",
        "OwnerId",
        "AccountId",
    },
    "OpportunityHistory": {"OpportunityId", "StageName", "Amount", "CloseDate"},
    "Task": {
        "Subject",
        "TaskSubtype",
        "ActivityDate",
        "CompletedDateTime",
        "OwnerId",
        "WhoId",
        "WhatId",
    },
    "Event": {"Subject", "StartDateTime", "OwnerId", "WhoId", "WhatId"},
}
KEY_PREFIX = {
    "User": "005",
    "OpportunityStage": "01J",
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "Task": "00T",
    "Event": "00U",
}
# The Opportunity fields whose change adds an OpportunityHistory row
# (Probability is not modelled here).
HISTORY_FIELDS = ("StageName", "Amount", "CloseDate")
# Children that a merge moves from the losing record to the master.
MERGE_CHILDREN = {
    "Account": [("Contact", "AccountId"), ("Opportunity", "AccountId")],
    "Contact": [("Task", "WhoId"), ("Event", "WhoId")],
    "Lead": [("Task", "WhoId"), ("Event", "WhoId")],
}
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sf_datetime(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class LoggedRequest:
    time: float
    method: str
    path: str
    query: str
    status: int
    injected: bool


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- Write-back endpoints: PATCH /services/data/vXX.X/sobjects/Lead/{Id} ---
#
# Salesforce returns 204 with no body for a successful PATCH of a record, and
# a list of {message, errorCode, fields} for a rejected one. Leads here carry
# LastModifiedDate, which the write-back reads for its conflict check.

SCHEMA["Lead"].add("LastModifiedDate")
WRITABLE_FIELDS = {"Lead": {"OwnerId", "LastName", "Company", "Status"}}


class _WritebackEndpoints:
    """PATCH of Lead records, and a switch that fails the next writes."""

    def add_lead(self, email: str, owner_id: str, modified_at: dt.datetime) -> str:
        """Add an unconverted Lead last modified by a user at ``modified_at``."""
        return self.add(
            "Lead",
            modstamp=modified_at,
            Email=email,
            LastName="Diaz",
            Company="Initech",
            Status="Open - Not Contacted",
            IsConverted=False,
            OwnerId=owner_id,
            LastModifiedDate=modified_at,
        )

    def fail_writes(
        self, status: int, count: int = 1, retry_after: float | None = None
    ) -> None:
        """Fail the next ``count`` PATCH requests with ``status`` (429 or 5xx)."""
        with self._lock:
            self._write_failures().extend([(status, retry_after)] * count)

    def writes(self) -> list:
        """Return the PATCH requests that changed a record (status 204)."""
        return [r for r in self.log if r.method == "PATCH" and r.status == 204]

    def writeback_patch(self, path: str, body: bytes):
        failures = self._write_failures()
        if failures:
            status, retry_after = failures.popleft()
            headers = {}
            if retry_after is not None:
                headers["Retry-After"] = f"{retry_after:g}"
            message = f"Injected HTTP {status}"
            return status, [{"message": message, "errorCode": ""}], headers

        match = re.fullmatch(r"/services/data/v\d+\.\d/sobjects/(\w+)/(\w+)", path)
        if match is None:
            return 404, [{"errorCode": "NOT_FOUND", "message": "No such resource."}], {}

        sobject, record_id = match.groups()
        row = self.objects.get(sobject, {}).get(record_id)
        if row is None or row["IsDeleted"]:
            message = "The requested resource does not exist"
            return 404, [{"errorCode": "NOT_FOUND", "message": message}], {}
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            message = "The request body is not valid JSON."
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": message}], {}
        allowed = WRITABLE_FIELDS.get(sobject, set())
        for name, value in fields.items():
            if name not in allowed:
                message = f"No such column '{name}' on sobject of type {sobject}"
                return 400, [{"errorCode": "INVALID_FIELD", "message": message}], {}
            if name == "OwnerId" and value not in self.objects["User"]:
                message = f"Owner ID: id value of incorrect type: {value}"
                error = {
                    "errorCode": "FIELD_INTEGRITY_EXCEPTION",
                    "message": message,
                    "fields": ["OwnerId"],
                }
                return 400, [error], {}

        moment = T0 + dt.timedelta(seconds=self.clock.now())
        row.update(fields)
        row["SystemModstamp"] = moment
        row["LastModifiedDate"] = moment
        return 204, None, {}

    def _write_failures(self) -> collections.deque:
        if not hasattr(self, "_writeback_failures"):
            self._writeback_failures = collections.deque()
        return self._writeback_failures


# --- End of the write-back endpoints ---


class FakeSalesforce(_WritebackEndpoints):
    def __init__(self, api_limit: int = 15_000, clock=None):
        self.api_limit = api_limit
        self.api_used = 0
        self.clock = clock or SimulatedClock()
        self.max_batch_size: int | None = None
        self.objects: dict[str, dict[str, dict]] = collections.defaultdict(dict)
        self.log: list[LoggedRequest] = []
        self._clients: dict[str, str] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._access_tokens: set[str] = set()
        self._cursors: dict[str, list[dict]] = {}
        self._injected: collections.deque = collections.deque()
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # Server lifecycle

    def start(self) -> FakeSalesforce:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Auth knobs

    def add_client(self, client_id: str, client_secret: str, refresh_token: str):
        self._clients[client_id] = client_secret
        self._refresh_tokens[refresh_token] = client_id

    def expire_sessions(self) -> None:
        """Invalidate every access token, as a session timeout does."""
        with self._lock:
            self._access_tokens.clear()

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh_tokens.pop(refresh_token, None)

    def token_requests(self) -> list[LoggedRequest]:
        return [r for r in self.log if r.path == "/services/oauth2/token"]

    # Data

    def new_id(self, sobject: str) -> str:
        return f"{KEY_PREFIX[sobject]}5g{next(self._ids):013d}"

    def add(
        self,
        sobject: str,
        record_id: str | None = None,
        *,
        modstamp: dt.datetime | None = None,
        **fields,
    ) -> str:
        with self._lock:
            record_id = record_id or self.new_id(sobject)
            moment = modstamp or T0
            row = {name: None for name in SCHEMA[sobject]}
            row.update(
                Id=record_id,
                IsDeleted=False,
                SystemModstamp=moment,
                CreatedDate=fields.pop("CreatedDate", moment),
            )
            if sobject == "Lead":
                row["IsConverted"] = False
            row.update(fields)
            if sobject == "Opportunity":
                self._set_outcome(row)
            self.objects[sobject][record_id] = row
            if sobject == "Opportunity":
                self._add_history(row, moment)
            return record_id

    def add_user(self, user_id, email, first="", last="", active=True) -> str:
        return self.add(
            "User",
            user_id,
            Email=email,
            FirstName=first,
            LastName=last,
            Name=" ".join(p for p in (first, last) if p),
            IsActive=active,
        )

    def add_stage(
        self,
        api_name: str,
        label: str,
        *,
        closed: bool = False,
        won: bool = False,
        probability: int = 0,
        active: bool = True,
    ) -> str:
        return self.add(
            "OpportunityStage",
            ApiName=api_name,
            MasterLabel=label,
            IsActive=active,
            IsClosed=closed,
            IsWon=won,
            DefaultProbability=Decimal(probability),
            SortOrder=len(self.objects["OpportunityStage"]) + 1,
        )

    def update(self, sobject: str, record_id: str, *, modstamp, **fields) -> None:
        with self._lock:
            row = self.objects[sobject][record_id]
            before = [row.get(name) for name in HISTORY_FIELDS]
            row.update(fields)
            row["SystemModstamp"] = modstamp
            if sobject == "Opportunity":
                self._set_outcome(row)
                if [row.get(name) for name in HISTORY_FIELDS] != before:
                    self._add_history(row, modstamp)

    def delete(self, sobject: str, record_id: str, at: dt.datetime) -> None:
        """Move a record to the Recycle Bin, an opportunity with its history."""
        with self._lock:
            row = self.objects[sobject][record_id]
            row["IsDeleted"] = True
            row["SystemModstamp"] = at
            if sobject == "Opportunity":
                for history in self.objects["OpportunityHistory"].values():
                    if history["OpportunityId"] == record_id:
                        history["IsDeleted"] = True
                        history["SystemModstamp"] = at

    def convert_lead(
        self, lead_id: str, at: dt.datetime, opportunity_id: str | None = None, **deal
    ) -> str:
        """Convert a lead into a new opportunity, as the Convert button does.

        The lead gets IsConverted, the default converted status, the new
        opportunity's id and the conversion date. Return the opportunity id.
        """
        with self._lock:
            lead = self.objects["Lead"][lead_id]
            deal.setdefault("Name", lead.get("Company") or lead_id)
            deal.setdefault("OwnerId", lead.get("OwnerId"))
            opportunity_id = self.add(
                "Opportunity", opportunity_id, modstamp=at, CreatedDate=at, **deal
            )
            self.update(
                "Lead",
                lead_id,
                modstamp=at,
                IsConverted=True,
                Status="Closed - Converted",
                ConvertedOpportunityId=opportunity_id,
                ConvertedDate=at.date(),
            )
            return opportunity_id

    def merge(self, sobject: str, master_id: str, loser_id: str, at: dt.datetime):
        """Merge ``loser_id`` into ``master_id``, moving its children first."""
        with self._lock:
            for child, field in MERGE_CHILDREN[sobject]:
                for row in self.objects[child].values():
                    if row.get(field) == loser_id and not row["IsDeleted"]:
                        row[field] = master_id
                        row["SystemModstamp"] = at
            loser = self.objects[sobject][loser_id]
            loser["MasterRecordId"] = master_id
            self.delete(sobject, loser_id, at)
            self.objects[sobject][master_id]["SystemModstamp"] = at

    def _set_outcome(self, row: dict) -> None:
        for stage in self.objects["OpportunityStage"].values():
            if stage["ApiName"] == row.get("StageName"):
                row["IsClosed"] = stage["IsClosed"]
                row["IsWon"] = stage["IsWon"]
                return

    def _add_history(self, row: dict, at: dt.datetime) -> None:
        history_id = self.new_id("OpportunityHistory")
        self.objects["OpportunityHistory"][history_id] = {
            "Id": history_id,
            "IsDeleted": False,
            "SystemModstamp": at,
            "CreatedDate": at,
            "OpportunityId": row["Id"],
            "StageName": row.get("StageName"),
            "Amount": row.get("Amount"),
            "CloseDate": row.get("CloseDate"),
        }

    def inject(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        error_code: str = "",
    ):
        """Respond to the next ``count`` API requests with ``status``."""
        with self._lock:
            self._injected.extend([(status, retry_after, error_code)] * count)

    # Request statistics

    def requests(self, status: int | None = None) -> list[LoggedRequest]:
        return [r for r in self.log if status is None or r.status == status]

    def queries(self) -> list[str]:
        return [r.query for r in self.log if r.query]

    def max_in_window(self, window: float) -> int:
        """Return the max requests served (any status) in any ``window`` seconds."""
        times = sorted(r.time for r in self.log)
        highest = 0
        start = 0
        for end, moment in enumerate(times):
            while times[start] <= moment - window:
                start += 1
            highest = max(highest, end - start + 1)
        return highest

    # Serving

    def handle(self, method: str, raw_path: str, headers, body: bytes):
        parsed = urlparse(raw_path)
        path = parsed.path
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        with self._lock:
            now = self.clock.now()
            if method == "POST" and path == "/services/oauth2/token":
                form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
                status, payload = self._token(form)
                return self._logged(now, method, path, "", status, payload, {})
            soql = query.get("q", "")
            if self._injected:
                status, retry_after, code = self._injected.popleft()
                extra = {}
                if retry_after is not None:
                    extra["Retry-After"] = f"{retry_after:g}"
                payload = [{"message": f"Injected HTTP {status}", "errorCode": code}]
                if status == 401:
                    payload = _session_error()
                return self._logged(
                    now, method, path, soql, status, payload, extra, True
                )
            token = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if token not in self._access_tokens:
                return self._logged(now, method, path, soql, 401, _session_error(), {})
            if self.api_used >= self.api_limit:
                payload = [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ]
                return self._logged(now, method, path, soql, 403, payload, {})
            self.api_used += 1
            usage = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
            batch = _batch_size(headers.get("Sforce-Query-Options") or "")
            if self.max_batch_size:
                batch = min(batch, self.max_batch_size)
            if method == "PATCH":
                status, payload, write_headers = self.writeback_patch(path, body)
                usage.update(write_headers)
            else:
                status, payload = self._route(method, path, query, batch)
            return self._logged(now, method, path, soql, status, payload, usage)

    def _logged(
        self, now, method, path, soql, status, payload, headers, injected=False
    ):
        self.log.append(LoggedRequest(now, method, path, soql, status, injected))
        return status, payload, headers

    def _token(self, form: dict):
        if form.get("grant_type") != "refresh_token":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "grant type not supported",
            }
        client_id = self._refresh_tokens.get(form.get("refresh_token", ""))
        if client_id is None or client_id != form.get("client_id"):
            return 400, {
                "error": "invalid_grant",
                "error_description": "expired access/refresh token",
            }
        if self._clients.get(client_id) and (
            self._clients[client_id] != form.get("client_secret")
        ):
            return 400, {
                "error": "invalid_client",
                "error_description": "invalid client credentials",
            }
        access_token = f"00D5g000000FAKE!{next(self._ids)}"
        self._access_tokens.add(access_token)
        return 200, {
            "access_token": access_token,
            "instance_url": self.url,
            "id": f"{self.url}/id/00D5g000000FAKE/0055g000000USER",
            "token_type": "Bearer",
            "issued_at": str(int(self.clock.now() * 1000)),
            "signature": "fake-signature",
            "scope": "api refresh_token",
        }

    def _route(self, method: str, path: str, query: dict, batch: int):
        match = re.fullmatch(
            r"/services/data/(v\d+\.\d)/(query|queryAll)(?:/(.+))?", path
        )
        if method != "GET" or match is None:
            return 404, [{"errorCode": "NOT_FOUND", "message": "No such resource."}]
        version, resource, locator = match.groups()
        if locator:
            return self._more(version, locator, batch)
        try:
            rows, sobject = self._run_soql(query.get("q", ""), resource == "queryAll")
        except SoqlError as exc:
            return 400, [{"errorCode": exc.code, "message": exc.message}]
        records = [_as_json(sobject, version, row) for row in rows]
        return 200, self._batch(version, records, 0, batch)

    def _more(self, version: str, locator: str, batch: int):
        key, _, offset = locator.rpartition("-")
        records = self._cursors.get(key)
        if records is None or not offset.isdigit():
            return 400, [
                {
                    "errorCode": "INVALID_QUERY_LOCATOR",
                    "message": "invalid query locator",
                }
            ]
        return 200, self._batch(version, records, int(offset), batch, key)

    def _batch(self, version, records, offset, batch, key=None) -> dict:
        page = records[offset : offset + batch]
        done = offset + batch >= len(records)
        data = {"totalSize": len(records), "done": done, "records": page}
        if not done:
            if key is None:
                key = f"01g5g{next(self._ids):013d}"
                self._cursors[key] = records
            data["nextRecordsUrl"] = (
                f"/services/data/{version}/query/{key}-{offset + batch}"
            )
        return data

    def _run_soql(self, soql: str, include_deleted: bool):
        parsed = parse_soql(soql)
        sobject = parsed["from"]
        if sobject not in SCHEMA:
            raise SoqlError(
                "INVALID_TYPE", f"sObject type '{sobject}' is not supported."
            )
        known = SCHEMA[sobject] | COMMON_FIELDS
        used = set(parsed["fields"]) | set(parsed["order"]) | parsed["where_fields"]
        for name in sorted(used):
            if name not in known:
                raise SoqlError(
                    "INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'."
                )
        rows = [
            row
            for row in self.objects[sobject].values()
            if (include_deleted or not row["IsDeleted"]) and parsed["where"](row)
        ]
        rows.sort(key=lambda row: tuple(_sortable(row.get(f)) for f in parsed["order"]))
        if parsed["limit"] is not None:
            rows = rows[: parsed["limit"]]
        selected = [{f: row.get(f) for f in parsed["fields"]} for row in rows]
        return selected, sobject


# SOQL subset


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<dt>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"
    r"|(?P<date>\d{4}-\d\d-\d\d)|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>!=|>=|<=|=|>|<)"
    r"|(?P<punct>[(),])|(?P<word>\w+))"
)


def parse_soql(soql: str) -> dict:
    match = re.fullmatch(
        r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<from>\w+)"
        r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
        r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*",
        soql,
        re.IGNORECASE | re.DOTALL,
    )
    if match is None:
        raise SoqlError("MALFORMED_QUERY", f"Cannot parse query: {soql[:80]}")
    fields = [f.strip() for f in match["fields"].split(",")]
    order = []
    for item in (match["order"] or "").split(","):
        words = item.split()
        if words:
            if len(words) > 1 and words[1].upper() != "ASC":
                raise SoqlError("MALFORMED_QUERY", "The fake sorts ascending only.")
            order.append(words[0])
    where_fields: set[str] = set()
    where = lambda row: True  # noqa: E731
    if match["where"]:
        tokens = _tokenize(match["where"])
        parser = _WhereParser(tokens, where_fields)
        where = parser.parse()
    return {
        "fields": fields,
        "from": match["from"],
        "order": order,
        "where": where,
        "where_fields": where_fields,
        "limit": int(match["limit"]) if match["limit"] else None,
    }


def _tokenize(text: str) -> list[tuple[str, object]]:
    tokens = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SoqlError("MALFORMED_QUERY", f"Unexpected text: {text[position:]}")
        position = match.end()
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
            tokens.append(("value", value))
        elif kind == "dt":
            tokens.append(("value", dt.datetime.fromisoformat(raw)))
        elif kind == "date":
            tokens.append(("value", dt.date.fromisoformat(raw)))
        elif kind == "num":
            tokens.append(("value", Decimal(raw)))
        elif kind == "word" and raw.lower() in ("true", "false"):
            tokens.append(("value", raw.lower() == "true"))
        elif kind == "word" and raw.lower() == "null":
            tokens.append(("value", None))
        elif kind == "word" and raw.upper() in ("AND", "OR", "IN", "NOT"):
            tokens.append(("keyword", raw.upper()))
        else:
            tokens.append((kind, raw))
    return tokens


class _WhereParser:
    def __init__(self, tokens, fields: set[str]):
        self.tokens = tokens
        self.position = 0
        self.fields = fields

    def parse(self):
        predicate = self._or()
        if self.position != len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", "Unexpected tokens after WHERE clause.")
        return predicate

    def _peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self):
        token = self._peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "The WHERE clause ends too early.")
        self.position += 1
        return token

    def _or(self):
        parts = [self._and()]
        while self._peek() == ("keyword", "OR"):
            self._take()
            parts.append(self._and())
        return lambda row: any(p(row) for p in parts)

    def _and(self):
        parts = [self._atom()]
        while self._peek() == ("keyword", "AND"):
            self._take()
            parts.append(self._atom())
        return lambda row: all(p(row) for p in parts)

    def _atom(self):
        if self._peek() == ("punct", "("):
            self._take()
            inner = self._or()
            if self._take() != ("punct", ")"):
                raise SoqlError("MALFORMED_QUERY", "Missing closing bracket.")
            return inner
        kind, field = self._take()
        if kind != "word":
            raise SoqlError("MALFORMED_QUERY", f"Expected a field, got {field!r}.")
        self.fields.add(field)
        kind, operator = self._take()
        if (kind, operator) == ("keyword", "IN"):
            values = self._value_list()
            return lambda row: row.get(field) in values
        if kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"Expected an operator after {field}.")
        kind, value = self._take()
        if kind != "value":
            raise SoqlError("MALFORMED_QUERY", f"Expected a value after {operator}.")
        return lambda row: _compare(row.get(field), operator, value)

    def _value_list(self) -> list:
        if self._take() != ("punct", "("):
            raise SoqlError("MALFORMED_QUERY", "IN needs a bracketed list.")
        values = []
        while True:
            kind, value = self._take()
            if kind != "value":
                raise SoqlError("MALFORMED_QUERY", "IN lists hold values only.")
            values.append(value)
            separator = self._take()
            if separator == ("punct", ")"):
                return values
            if separator != ("punct", ","):
                raise SoqlError("MALFORMED_QUERY", "Separate IN values with commas.")


def _compare(left, operator: str, right) -> bool:
    if operator == "=":
        return left == right
    if operator == "!=":
        return left != right
    if left is None or right is None:
        return False
    return {
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[operator]


def _sortable(value):
    # Salesforce sorts NULL first in ascending order.
    return (value is not None, value if value is not None else 0)


def _batch_size(header: str) -> int:
    match = re.search(r"batchSize=(\d+)", header)
    if not match:
        return 2000
    return min(max(int(match.group(1)), 200), 2000)


def _as_json(sobject: str, version: str, row: dict) -> dict:
    data = {
        "attributes": {
            "type": sobject,
            "url": f"/services/data/{version}/sobjects/{sobject}/{row['Id']}",
        }
    }
    for name, value in row.items():
        data[name] = _json_value(value)
    return data


def _json_value(value):
    if isinstance(value, dt.datetime):
        return sf_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _session_error() -> list[dict]:
    return [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSalesforce
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.fake.handle(
            method, self.path, self.headers, body
        )
        # A 204 No Content response, returned for a PATCH, has no body.
        content = b"" if status == 204 else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass
