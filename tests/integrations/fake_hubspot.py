"""An in-memory HubSpot CRM v3 server on 127.0.0.1 for the sync tests.

It serves the endpoints the connector uses, written from HubSpot's public
API reference. These are owners, deal pipelines, object listing with
``after`` paging and ``archived``, CRM search (on the last-modified property,
or ``EQ`` on any other property), record creation (``POST``, HTTP 201, and
409 for a contact email already in use), record updates (``PATCH``) and the
v4 batch associations read. Search returns at most 200 results per page and
HTTP 400 at an offset of 10,000 or more.

Merges follow HubSpot's merge of contacts and companies as its changelog
describes it: the result is a new record with a new id, the values of the
primary record win, ``hs_merged_object_ids`` lists both former ids (and the
ids merged into them before), and the associations of other records move to
the new record. A read of a former id returns the new record. The fake
lists neither former record, archived or not, because HubSpot documents only
that the former ids point at the result.

The server checks bearer tokens (401 otherwise) and enforces per-token
limits: a rolling 10-second burst limit and a per-second search limit. Over
a limit it responds 429 with a ``policyName`` and Retry-After. Each token can
have its own clock, so tests measure waits in simulated seconds. Failures (a
429 storm, 5xx responses) can be injected, and every request is logged with
its token, simulated time, path and status.

``POST /oauth/v1/token`` serves OAuth 2 refresh grants (form body
grant_type, client_id, client_secret, refresh_token) of the apps added with
``add_oauth_client``. It answers ``token_type``, ``access_token``,
``refresh_token`` and ``expires_in``, as HubSpot's OAuth reference shows,
and a rejected refresh token gets 400 with status BAD_REFRESH_TOKEN. An
expired access token gets 401 with category EXPIRED_AUTHENTICATION. The
error bodies for an unknown client and a wrong grant type are our guess:
the reference we read documents only the refresh token's error.

The same endpoint serves authorization code grants (form body
grant_type=authorization_code, client_id, client_secret, redirect_uri and
code, as HubSpot's OAuth quickstart guide shows) of the codes issued with
``oauth.add_code``. The client credentials count only in the form body, so
a request that sends them in an Authorization header gets BAD_CLIENT_ID.
The statuses BAD_AUTH_CODE and BAD_REDIRECT_URI are our guess too.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from integrations.connectors.ratelimit import REAL_CLOCK, Clock
from tests.integrations.fake_oauth import (
    INVALID_GRANT,
    REDIRECT_URI_MISMATCH,
    FakeOAuth,
)

SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
SEARCH_OFFSET_LIMIT = 10_000
# Maximum ``inputs`` of one batch associations read (HubSpot developer
# changelog, in force from 10 February 2025); more give HTTP 400.
ASSOCIATION_BATCH_MAX = 1000
CONTACTS = "contacts"
# Singular object names, as HubSpot writes them in association error messages.
SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
}


class SimulatedClock(Clock):
    """A clock whose sleep advances time at once instead of waiting."""

    def __init__(self, start: float = 0.0):
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)


def iso(moment: dt.datetime) -> str:
    return (
        moment.astimezone(dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class FakeRecord:
    id: str
    properties: dict
    created_at: dt.datetime
    modified_at: dt.datetime
    archived_at: dt.datetime | None = None
    associations: dict[str, list[str]] = field(default_factory=dict)
    # Property name -> [(value, time set)], oldest first, for propertiesWithHistory.
    history: dict[str, list[tuple[str | None, dt.datetime]]] = field(
        default_factory=dict
    )

    def history_json(self, names: list[str]) -> dict:
        """Return the values of ``names`` newest first, as HubSpot lists them."""
        return {
            name: [
                {"value": value, "timestamp": iso(at), "sourceType": "CRM_UI"}
                for value, at in reversed(self.history.get(name, []))
            ]
            for name in names
        }

    def as_json(self, properties: list[str] | None, associations: list[str]) -> dict:
        names = properties or list(self.properties)
        data = {
            "id": self.id,
            "properties": {name: self.properties.get(name) for name in names},
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.modified_at),
            "archived": self.archived_at is not None,
        }
        data["properties"]["hs_object_id"] = self.id
        if self.archived_at is not None:
            data["archivedAt"] = iso(self.archived_at)
        linked = {
            name: {"results": [{"id": i, "type": "deal_to_company"} for i in ids]}
            for name, ids in self.associations.items()
            if name in associations and ids
        }
        if linked:
            data["associations"] = linked
        return data


@dataclass
class LoggedRequest:
    token: str
    time: float
    method: str
    path: str
    status: int
    injected: bool


class FakeHubSpot:
    def __init__(self, burst_limit=(100, 10.0), search_limit=(5, 1.0)):
        self.burst_limit = burst_limit
        self.search_limit = search_limit
        self.clocks: dict[str, Clock] = {}
        self.owners: list[dict] = []
        self.pipelines: list[dict] = []
        self.objects: dict[str, dict[str, FakeRecord]] = collections.defaultdict(dict)
        self.log: list[LoggedRequest] = []
        # (status, Retry-After, path or None for any path) of injected failures.
        self._injected: collections.deque[tuple[int, float | None, str | None]] = (
            collections.deque()
        )
        self._accepted: dict[tuple[str, str], collections.deque[float]] = (
            collections.defaultdict(collections.deque)
        )
        self._next_id = 1000
        # (object type, former id of a merged record) -> id of the merge result.
        self.aliases: dict[tuple[str, str], str] = {}
        # Associated ids per record and page of a batch associations read.
        # NOTE: HubSpot's reference does not state this page size, so 500 is
        # a guess.
        self.association_page_max = 500
        # Record ids whose batch associations read fails with an internal error.
        self.association_failures: set[str] = set()
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.oauth = FakeOAuth("hs-oauth")
        # The clock of the OAuth access tokens' expiry and of their requests.
        self.oauth_clock: Clock = REAL_CLOCK

    # Server lifecycle

    def start(self) -> FakeHubSpot:
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

    # Data

    def add_token(self, token: str, clock: Clock = REAL_CLOCK) -> None:
        self.clocks[token] = clock

    def add_oauth_client(self, client_id: str, client_secret: str, refresh_token: str):
        self.oauth.add_client(client_id, client_secret, refresh_token)

    def token_requests(self) -> list[LoggedRequest]:
        return [r for r in self.log if r.path == "/oauth/v1/token"]

    def add_owner(self, owner_id: str, email: str, first: str = "", last: str = ""):
        self.owners.append(
            {
                "id": owner_id,
                "email": email,
                "firstName": first,
                "lastName": last,
                "archived": False,
            }
        )

    def add_pipeline(self, pipeline_id: str, label: str, stages: list[tuple]) -> None:
        """Add a deal pipeline; each stage is (id, label, is_closed, probability)."""
        self.pipelines.append(
            {
                "id": pipeline_id,
                "label": label,
                "displayOrder": len(self.pipelines),
                "archived": False,
                "stages": [
                    {
                        "id": stage_id,
                        "label": stage_label,
                        "displayOrder": order,
                        "archived": False,
                        "metadata": {
                            "isClosed": "true" if closed else "false",
                            "probability": str(probability),
                        },
                    }
                    for order, (
                        stage_id,
                        stage_label,
                        closed,
                        probability,
                    ) in enumerate(stages)
                ],
            }
        )

    def add(
        self,
        object_type: str,
        record_id: str | None = None,
        *,
        modified_at: dt.datetime | None = None,
        associations: dict[str, list[str]] | None = None,
        **properties,
    ) -> str:
        with self._lock:
            if record_id is None:
                self._next_id += 1
                record_id = str(self._next_id)
            moment = modified_at or dt.datetime.now(dt.UTC)
            history = {
                k: [(None if v is None else str(v), moment)]
                for k, v in properties.items()
            }
            self.objects[object_type][record_id] = FakeRecord(
                history=history,
                id=record_id,
                properties={
                    k: None if v is None else str(v) for k, v in properties.items()
                },
                created_at=moment,
                modified_at=moment,
                associations=associations or {},
            )
            return record_id

    def update(
        self, object_type: str, record_id: str, *, modified_at=None, **properties
    ) -> None:
        with self._lock:
            record = self.objects[object_type][record_id]
            record.properties.update({k: str(v) for k, v in properties.items()})
            record.modified_at = modified_at or dt.datetime.now(dt.UTC)
            for name, value in properties.items():
                record.history.setdefault(name, []).append(
                    (str(value), record.modified_at)
                )

    def associate(
        self,
        object_type: str,
        record_id: str,
        to_type: str,
        ids: list[str],
        *,
        modified_at: dt.datetime | None = None,
    ) -> None:
        """Replace the ``to_type`` associations of a record and move its modified time.

        NOTE: HubSpot's reference does not say whether an association change
        moves the last-modified property. The fake moves it, so that a search
        finds the record.
        """
        with self._lock:
            record = self.objects[object_type][record_id]
            record.associations[to_type] = list(ids)
            record.modified_at = modified_at or dt.datetime.now(dt.UTC)

    def archive(self, object_type: str, record_id: str, at: dt.datetime) -> None:
        with self._lock:
            record = self.objects[object_type][record_id]
            record.archived_at = at
            record.modified_at = at

    def merge(
        self, object_type: str, primary_id: str, merged_id: str, at: dt.datetime
    ) -> str:
        """Merge ``merged_id`` into ``primary_id`` and return the new record's id."""
        with self._lock:
            records = self.objects[object_type]
            primary = records.pop(primary_id)
            merged = records.pop(merged_id)
            properties = dict(merged.properties)
            properties.update(
                {k: v for k, v in primary.properties.items() if v is not None}
            )
            former = []
            for record in (primary, merged):
                earlier = record.properties.get("hs_merged_object_ids") or ""
                former += [i for i in earlier.split(";") if i]
                former.append(record.id)
            properties["hs_merged_object_ids"] = ";".join(former)
            self._next_id += 1
            new_id = str(self._next_id)
            records[new_id] = FakeRecord(
                id=new_id,
                properties=properties,
                created_at=min(primary.created_at, merged.created_at),
                modified_at=at,
            )
            for former_id in former:
                self.aliases[(object_type, former_id)] = new_id
            for other_type in self.objects.values():
                for record in other_type.values():
                    ids = record.associations.get(object_type)
                    if ids and set(ids) & set(former):
                        moved = [new_id if i in former else i for i in ids]
                        record.associations[object_type] = list(dict.fromkeys(moved))
            return new_id

    def inject(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
    ):
        """Respond to the next ``count`` requests with ``status`` and serve nothing.

        With ``path``, only requests to that path get the injected status.
        """
        with self._lock:
            self._injected.extend([(status, retry_after, path)] * count)

    # Request statistics

    def requests(self, token: str | None = None, status: int | None = None) -> list:
        return [
            r
            for r in self.log
            if (token is None or r.token == token)
            and (status is None or r.status == status)
        ]

    def requests_per_second(self, token: str) -> collections.Counter:
        """Count the served requests of a token per whole simulated second."""
        return collections.Counter(
            math.floor(r.time) for r in self.requests(token) if r.status < 400
        )

    def max_in_window(self, token: str, window: float, search_only=False) -> int:
        """Return the max served requests of a token in any ``window`` seconds."""
        times = sorted(
            r.time
            for r in self.requests(token)
            if r.status < 400 and (not search_only or r.path.endswith("/search"))
        )
        highest = 0
        start = 0
        for end, moment in enumerate(times):
            while times[start] <= moment - window:
                start += 1
            highest = max(highest, end - start + 1)
        return highest

    # Serving (called by the handler threads)

    def handle(self, method: str, raw_path: str, headers, body: bytes):
        parsed = urlparse(raw_path)
        path = parsed.path
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        with self._lock:
            if method == "POST" and path == "/oauth/v1/token":
                return self._token(body)
            oauth_state = self.oauth.check(token, self.oauth_clock.now())
            if oauth_state == "expired":
                return self._logged(token, 0.0, method, path, 401, _expired_error())
            if token not in self.clocks:
                return self._logged(token, 0.0, method, path, 401, _auth_error())
            now = self.clocks[token].now()
            injected = self._injected_failure(path)
            if injected is not None:
                status, retry_after = injected
                return self._logged(
                    token, now, method, path, status, _error(status), retry_after, True
                )
            limited = self._check_limits(token, now, path.endswith("/search"))
            if limited is not None:
                policy, retry_after = limited
                return self._logged(
                    token, now, method, path, 429, _rate_error(policy), retry_after
                )
            status, payload = self._route(method, path, query, body)
            return self._logged(token, now, method, path, status, payload)

    def _injected_failure(self, path: str) -> tuple[int, float | None] | None:
        """Remove and return the first injected (status, Retry-After) for ``path``."""
        for entry in self._injected:
            status, retry_after, only_path = entry
            if only_path is None or only_path == path:
                self._injected.remove(entry)
                return status, retry_after
        return None

    def _token(self, body: bytes):
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            error, payload = self.oauth.authorization_code(
                grant_type=grant_type,
                client_id=form.get("client_id", ""),
                client_secret=form.get("client_secret", ""),
                code=form.get("code", ""),
                redirect_uri=form.get("redirect_uri", ""),
                now=self.oauth_clock.now(),
            )
        else:
            error, payload = self.oauth.refresh(
                grant_type=grant_type,
                client_id=form.get("client_id", ""),
                client_secret=form.get("client_secret", ""),
                refresh_token=form.get("refresh_token", ""),
                now=self.oauth_clock.now(),
            )
        path = "/oauth/v1/token"
        if error is not None:
            payload = _token_error(error, grant_type)
            return self._logged("", 0.0, "POST", path, 400, payload)
        self.clocks[payload["access_token"]] = self.oauth_clock
        payload = {"token_type": "bearer", **payload}
        return self._logged("", 0.0, "POST", path, 200, payload)

    def _logged(
        self,
        token,
        now,
        method,
        path,
        status,
        payload,
        retry_after=None,
        injected=False,
    ):
        self.log.append(LoggedRequest(token, now, method, path, status, injected))
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return status, payload, headers

    def _check_limits(self, token: str, now: float, search: bool):
        checks = [("TEN_SECONDLY_ROLLING", *self.burst_limit)]
        if search:
            checks.append(("SECONDLY", *self.search_limit))
        for policy, limit, window in checks:
            times = self._accepted[(token, policy)]
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                return policy, times[0] + window - now
        for policy, _limit, _window in checks:
            self._accepted[(token, policy)].append(now)
        return None

    def _route(self, method: str, path: str, query: dict, body: bytes):
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/crm/v3/owners":
            return 200, _paged(self.owners, query, LIST_PAGE_MAX)
        if method == "GET" and path == "/crm/v3/pipelines/deals":
            return 200, {"results": self.pipelines}
        if (
            parts[:3] == ["crm", "v3", "objects"]
            and len(parts) == 4
            and method == "GET"
        ):
            return 200, self._list(parts[3], query)
        if (
            parts[:3] == ["crm", "v3", "objects"]
            and len(parts) == 5
            and method == "GET"
            and parts[4] != "search"
        ):
            return self._read(parts[3], parts[4], query)
        if parts[:3] == ["crm", "v3", "objects"] and parts[4:] == ["search"]:
            return self._search(parts[3], json.loads(body or b"{}"))
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) == 4:
            if method == "POST":
                return self._create(parts[3], json.loads(body or b"{}"))
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) == 5:
            if method == "PATCH":
                return self._patch(parts[3], parts[4], json.loads(body or b"{}"))
        if (
            method == "POST"
            and parts[:3] == ["crm", "v4", "associations"]
            and parts[5:] == ["batch", "read"]
            and len(parts) == 7
        ):
            return self._associations_batch_read(
                parts[3], parts[4], json.loads(body or b"{}")
            )
        return 404, {"status": "error", "message": f"No route for {method} {path}"}

    def _list(self, object_type: str, query: dict) -> dict:
        archived = query.get("archived") == "true"
        limit = min(int(query.get("limit", 10)), LIST_PAGE_MAX)
        start = int(query.get("after", 0))
        properties = [p for p in query.get("properties", "").split(",") if p]
        associations = [a for a in query.get("associations", "").split(",") if a]
        records = sorted(
            (
                r
                for r in self.objects[object_type].values()
                if (r.archived_at is not None) == archived and int(r.id) >= start
            ),
            key=lambda r: int(r.id),
        )
        page = records[:limit]
        data = {"results": [r.as_json(properties, associations) for r in page]}
        if len(records) > limit:
            next_after = str(int(records[limit].id))
            data["paging"] = {
                "next": {"after": next_after, "link": "?after=" + next_after}
            }
        return data

    def _read(self, object_type: str, record_id: str, query: dict):
        """Serve GET /crm/v3/objects/{type}/{id}, with propertiesWithHistory.

        A former id of a merged record reads the merge result.
        """
        record_id = self.aliases.get((object_type, record_id), record_id)
        record = self.objects[object_type].get(record_id)
        if record is None or record.archived_at is not None:
            return 404, {"status": "error", "message": "resource not found"}
        properties = [p for p in query.get("properties", "").split(",") if p]
        associations = [a for a in query.get("associations", "").split(",") if a]
        data = record.as_json(properties, associations)
        with_history = [
            p for p in query.get("propertiesWithHistory", "").split(",") if p
        ]
        if with_history:
            data["propertiesWithHistory"] = record.history_json(with_history)
        return 200, data

    def _create(self, object_type: str, body: dict):
        """Serve POST /crm/v3/objects/{type} with a ``properties`` object."""
        properties = body.get("properties") or {}
        email = (properties.get("email") or "").lower()
        if object_type == CONTACTS and email:
            for record in self.objects[CONTACTS].values():
                if (record.properties.get("email") or "").lower() == email:
                    return 409, {
                        "status": "error",
                        "category": "CONFLICT",
                        "message": f"Contact already exists. Existing ID: {record.id}",
                    }
        record_id = self.add(object_type, **properties)
        return 201, self.objects[object_type][record_id].as_json(None, [])

    def _patch(self, object_type: str, record_id: str, body: dict):
        """Serve PATCH /crm/v3/objects/{type}/{id}, changing only the sent values."""
        record = self.objects[object_type].get(record_id)
        if record is None or record.archived_at is not None:
            return 404, {"status": "error", "message": "resource not found"}
        self.update(object_type, record_id, **(body.get("properties") or {}))
        return 200, record.as_json(None, [])

    def _search(self, object_type: str, body: dict):
        limit = min(int(body.get("limit", 10)), SEARCH_PAGE_MAX)
        offset = int(body.get("after") or 0)
        if offset >= SEARCH_OFFSET_LIMIT:
            return 400, {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Search results are limited to 10,000 per query.",
            }
        modified = (
            "lastmodifieddate" if object_type == CONTACTS else "hs_lastmodifieddate"
        )
        records = [
            r
            for r in self.objects[object_type].values()
            if r.archived_at is None and _matches(r, body.get("filterGroups"), modified)
        ]
        records.sort(key=lambda r: (r.modified_at, int(r.id)))
        page = records[offset : offset + limit]
        properties = body.get("properties") or []
        data = {
            "total": len(records),
            "results": [r.as_json(properties, []) for r in page],
        }
        if offset + limit < len(records):
            data["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, data

    def _associations_batch_read(self, from_type: str, to_type: str, body: dict):
        """Serve POST /crm/v4/associations/{from}/{to}/batch/read.

        Each input ``{"id", "after"}`` gives one result with a page of ``to``
        entries and ``paging.next.after`` while more remain. An id with no
        associated record gets a NO_ASSOCIATIONS_FOUND error instead, and
        any error makes the response HTTP 207 Multi-Status.
        """
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            return 400, {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": f"Batch read accepts at most {ASSOCIATION_BATCH_MAX} "
                f"inputs, not {len(inputs)}.",
            }
        results = []
        errors = []
        for item in inputs:
            record_id = str(item["id"])
            record = self.objects[from_type].get(record_id)
            ids = record.associations.get(to_type, []) if record else []
            if record_id in self.association_failures:
                errors.append(_association_error(from_type, to_type, record_id))
            elif not ids:
                errors.append(_no_associations(from_type, to_type, record_id))
            else:
                results.append(self._association_page(record_id, ids, item))
        data = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(dt.datetime.now(dt.UTC)),
            "completedAt": iso(dt.datetime.now(dt.UTC)),
        }
        if not errors:
            return 200, data
        data["errors"] = errors
        data["numErrors"] = len(errors)
        return 207, data

    def _association_page(self, record_id: str, ids: list[str], item: dict) -> dict:
        start = int(item.get("after") or 0)
        end = start + self.association_page_max
        # The fake keeps no association type ids, so typeId 0 stands for each.
        types = [{"category": "HUBSPOT_DEFINED", "typeId": 0, "label": None}]
        result = {
            "from": {"id": record_id},
            "to": [
                {"toObjectId": i, "associationTypes": types} for i in ids[start:end]
            ],
        }
        if end < len(ids):
            result["paging"] = {"next": {"after": str(end)}}
        return result


def _no_associations(from_type: str, to_type: str, record_id: str) -> dict:
    to_name = SINGULAR.get(to_type, to_type)
    from_name = SINGULAR.get(from_type, from_type)
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {to_name} is associated with {from_name} {record_id}.",
        "context": {
            "fromObjectId": [record_id],
            "fromObjectType": [from_name],
            "toObjectType": [to_name],
        },
    }


def _association_error(from_type: str, to_type: str, record_id: str) -> dict:
    return {
        "status": "error",
        "category": "INTERNAL_ERROR",
        "message": f"Reading the {to_type} of {from_type} {record_id} failed.",
        "context": {"fromObjectId": [record_id]},
    }


def _matches(record: FakeRecord, groups: list | None, modified: str) -> bool:
    if not groups:
        return True
    return any(all(_filter(record, f, modified) for f in g["filters"]) for g in groups)


def _filter(record: FakeRecord, flt: dict, modified: str) -> bool:
    if flt["propertyName"] != modified:
        return _filter_value(record, flt)
    value = millis(record.modified_at)
    target = int(flt["value"])
    return {
        "GTE": value >= target,
        "GT": value > target,
        "LTE": value <= target,
        "LT": value < target,
        "EQ": value == target,
    }[flt["operator"]]


def _filter_value(record: FakeRecord, flt: dict) -> bool:
    """Match ``EQ`` on a property other than the last-modified one.

    Case-insensitive, as HubSpot matches string values.
    """
    if flt["operator"] != "EQ":
        raise ValueError(f"The fake supports only EQ on {flt['propertyName']}")
    value = record.properties.get(flt["propertyName"])
    return value is not None and value.lower() == str(flt["value"]).lower()


def _paged(items: list[dict], query: dict, page_max: int) -> dict:
    limit = min(int(query.get("limit", 100)), page_max)
    start = int(query.get("after", 0))
    page = items[start : start + limit]
    data = {"results": page}
    if start + limit < len(items):
        data["paging"] = {"next": {"after": str(start + limit)}}
    return data


def _auth_error() -> dict:
    return {
        "status": "error",
        "category": "INVALID_AUTHENTICATION",
        "message": "Authentication credentials not found.",
    }


def _expired_error() -> dict:
    return {
        "status": "error",
        "message": "The OAuth token used to make this call expired 0 second(s) ago.",
        "correlationId": "00000000-0000-4000-8000-000000000000",
        "category": "EXPIRED_AUTHENTICATION",
    }


def _token_error(error: str, grant_type: str) -> dict:
    if error == INVALID_GRANT and grant_type == "authorization_code":
        return {
            "status": "BAD_AUTH_CODE",
            "message": "missing or unknown auth code",
            "correlationId": "00000000-0000-4000-8000-000000000003",
        }
    if error == REDIRECT_URI_MISMATCH:
        return {
            "status": "BAD_REDIRECT_URI",
            "message": "redirect_uri does not match the one the code was issued to",
            "correlationId": "00000000-0000-4000-8000-000000000004",
        }
    if error == INVALID_GRANT:
        return {
            "status": "BAD_REFRESH_TOKEN",
            "message": "missing or invalid refresh token",
            "correlationId": "00000000-0000-4000-8000-000000000001",
        }
    return {
        "status": "BAD_CLIENT_ID" if error == "invalid_client" else "BAD_GRANT_TYPE",
        "message": f"rejected refresh request ({error})",
        "correlationId": "00000000-0000-4000-8000-000000000002",
    }


def _rate_error(policy: str) -> dict:
    return {
        "status": "error",
        "errorType": "RATE_LIMIT",
        "policyName": policy,
        "message": f"You have reached your {policy.lower()} limit.",
    }


def _error(status: int) -> dict:
    if status == 429:
        return _rate_error("TEN_SECONDLY_ROLLING")
    return {"status": "error", "message": f"Injected HTTP {status}."}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHubSpot
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's
    # algorithm and delayed ACKs add about 40 ms to each kept-alive request.
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
        content = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass
