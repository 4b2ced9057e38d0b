"""An in-memory Pipedrive company on 127.0.0.1 for the connector and sync tests.

It serves the v1 endpoints the connector uses, written from Pipedrive's API
reference: users (``/v1/users/me`` returns the first user added), pipelines,
stages, organizations, persons, deals (with the
``status`` filter open, won, lost, deleted or all_not_deleted) and activities
(``type`` and ``user_id``, where 0 means every user). Lists page with
``start`` and ``limit`` (at most 500) and report
``additional_data.pagination`` with ``more_items_in_collection`` and
``next_start``. ``GET /v1/recents`` returns the items updated after
``since_timestamp`` as ``{item, id, data}``. Pipedrive does not document
their order, so the fake returns them by id and the connector must sort.
``GET /v1/dealFields`` lists the deal fields at most 100 per page, whatever
``limit`` asks for, so a company with more fields needs ``next_start``.
Custom fields have 40-character hexadecimal keys, as in Pipedrive, and a
deal stores its value of one under that key (an option id for enum fields).

Tokens are accepted in the ``x-api-token`` header, the older ``api_token``
query parameter or a bearer header (401 otherwise). Each token has a rolling
2-second limit. Every response carries x-ratelimit-limit,
x-ratelimit-remaining and x-ratelimit-reset, and a request over the limit
gets 429 with Retry-After. Failures (429 storms, 5xx) can be
injected. References are objects in list responses (``user_id``,
``org_id``, ``owner_id``), as the v1 REST API sends them. Merges follow
Pipedrive's rules: the record in the URL is deleted, ``merge_with_id``
survives and receives the other's deals and activities.

``POST /oauth/token`` (``token_url``, on the same server in place of
https://oauth.pipedrive.com) serves OAuth 2 refresh grants of the apps added
with ``add_oauth_client``: HTTP Basic auth with the client ID and secret,
form body grant_type=refresh_token and refresh_token. It answers
``access_token``, ``token_type``, ``refresh_token``, ``scope``,
``expires_in`` and ``api_domain``, and a rejected refresh token gets 400
"Invalid grant: refresh_token is invalid", the message Pipedrive's OAuth
status-code list gives. The JSON fields around that message are our guess.
An expired access token gets the same 401 body as an unknown token.

The same endpoint serves authorization code grants of the codes issued with
``oauth.add_code``: HTTP Basic auth again, form body
grant_type=authorization_code, code and redirect_uri. Client credentials in
the form body instead count as none (invalid_client). A rejected code gets
"Invalid grant: authorization_code is invalid", and another redirect URI
"Invalid request: redirect_uri is invalid", as that list gives them.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import json
import math
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from integrations.connectors.ratelimit import Clock
from tests.integrations.fake_hubspot import SimulatedClock
from tests.integrations.fake_oauth import (
    INVALID_GRANT,
    REDIRECT_URI_MISMATCH,
    FakeOAuth,
)

PAGE_MAX = 500
DEAL_FIELDS_PAGE_MAX = 100
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
KINDS = ("organization", "person", "deal", "activity")


def pd_time(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class LoggedRequest:
    token: str
    time: float
    method: str
    path: str
    status: int
    injected: bool


# --- Write-back endpoints: GET /v1/persons/search and PUT /v1/persons/{id} ---
#
# The search returns {success, data: {items: [{result_score, item}]}} with
# the item's id, name, emails and owner. PUT changes the given fields, sets
# update_time to ``write_time`` and returns the updated person.


class _WritebackEndpoints:
    """Person search and update, and a switch that fails the next writes."""

    # update_time written by PUT; tests set it to check the conflict rule.
    write_time = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)

    def fail_writes(
        self, status: int, count: int = 1, retry_after: float | None = None
    ) -> None:
        """Fail the next ``count`` PUT requests with ``status`` (429 or 5xx)."""
        with self._lock:
            self._write_failures().extend([(status, retry_after)] * count)

    def writes(self) -> list:
        """Return the PUT requests that changed a record (status 200)."""
        return [r for r in self.log if r.method == "PUT" and r.status == 200]

    def writeback_route(self, method: str, path: str, query: dict, body: bytes):
        """Serve the write-back endpoints, or return None for other requests."""
        if method == "GET" and path == "/v1/persons/search":
            return (*self._person_search(query), {})
        if method != "PUT":
            return None
        failures = self._write_failures()
        if failures:
            status, retry_after = failures.popleft()
            headers = {}
            if retry_after is not None:
                headers["Retry-After"] = f"{retry_after:g}"
            return (
                status,
                {"success": False, "error": f"Injected HTTP {status}"},
                headers,
            )
        return (*self._person_put(path, body), {})

    def _person_search(self, query: dict):
        term = (query.get("term") or "").strip().lower()
        if query.get("fields") != "email" or query.get("exact_match") != "true":
            return 400, {
                "success": False,
                "error": "The fake searches persons by exact email only.",
            }
        items = []
        for row in self._live("person"):
            emails = [e.get("value", "") for e in row.get("email") or []]
            if term in (email.lower() for email in emails):
                owner = row.get("owner_id")
                item = {
                    "id": row["id"],
                    "type": "person",
                    "name": row.get("name"),
                    "emails": emails,
                    "owner": {"id": owner} if owner is not None else None,
                }
                items.append({"result_score": 1.0, "item": item})
        body = _paged(items, query)
        body["data"] = {"items": body["data"] or []}
        return 200, body

    def _person_put(self, path: str, body: bytes):
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[1] != "persons" or not parts[2].isdigit():
            return 404, {"success": False, "error": f"No route for PUT {path}"}
        row = self.items["person"].get(int(parts[2]))
        if row is None or not row.get("active_flag", True):
            return 404, {"success": False, "error": "Person not found"}
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            return 400, {"success": False, "error": "Invalid JSON body"}
        owner = fields.get("owner_id")
        if owner is not None and owner not in self.users:
            return 400, {
                "success": False,
                "error": "Owner not found",
                "error_info": f"No user with id {owner}.",
            }
        row.update(fields)
        row["update_time"] = pd_time(self.write_time)
        return 200, {"success": True, "data": self._expand("person", row)}

    def _write_failures(self) -> collections.deque:
        if not hasattr(self, "_writeback_failures"):
            self._writeback_failures = collections.deque()
        return self._writeback_failures


# --- End of the write-back endpoints ---


class FakePipedrive(_WritebackEndpoints):
    def __init__(self, limit: tuple[int, float] = (20, 2.0)):
        self.limit = limit
        self.clocks: dict[str, Clock] = {}
        self.users: dict[int, dict] = {}
        self.pipelines: dict[int, dict] = {}
        self.stages: dict[int, dict] = {}
        self.items: dict[str, dict[int, dict]] = {kind: {} for kind in KINDS}
        self.deal_fields: list[dict] = []
        self.log: list[LoggedRequest] = []
        self._accepted: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._injected: collections.deque = collections.deque()
        self._next_id = 1000
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.oauth = FakeOAuth("pd-oauth", lifetime=3599)
        # The clock of the OAuth access tokens' expiry and rate limits.
        self.oauth_clock: Clock = SimulatedClock()

    # Server lifecycle

    def start(self) -> FakePipedrive:
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
        return f"http://{host}:{port}/api"

    @property
    def token_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/oauth/token"

    # Data

    def add_oauth_client(self, client_id: str, client_secret: str, refresh_token: str):
        self.oauth.add_client(client_id, client_secret, refresh_token)

    def token_requests(self) -> list[LoggedRequest]:
        return [r for r in self.log if r.path == "/oauth/token"]

    def add_token(self, token: str, clock: Clock | None = None) -> None:
        self.clocks[token] = clock or SimulatedClock()

    def add_user(self, user_id: int, email: str, name: str, active=True) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": name,
            "email": email,
            "active_flag": active,
        }

    def add_pipeline(self, pipeline_id: int, name: str, stages: list[tuple]) -> None:
        """Add a pipeline; each stage is (id, name, deal probability in percent)."""
        self.pipelines[pipeline_id] = {
            "id": pipeline_id,
            "name": name,
            "order_nr": len(self.pipelines) + 1,
            "active": True,
        }
        for order, (stage_id, stage_name, probability) in enumerate(stages, 1):
            self.stages[stage_id] = {
                "id": stage_id,
                "name": stage_name,
                "pipeline_id": pipeline_id,
                "order_nr": order,
                "deal_probability": probability,
                "active_flag": True,
            }

    def add_deal_field(
        self,
        name: str,
        field_type: str = "varchar",
        *,
        key: str | None = None,
        options: list[str] | None = None,
    ) -> dict:
        """Add a deal field and return it; a field without ``key`` is custom.

        A custom field's key is 40 hexadecimal characters, derived from its
        position and name. Enum and set options get ids from 1000 on.
        """
        field_id = len(self.deal_fields) + 1
        custom = key is None
        if custom:
            key = hashlib.sha1(f"{field_id}:{name}".encode()).hexdigest()
        field = {
            "id": field_id,
            "key": key,
            "name": name,
            "order_nr": field_id,
            "field_type": field_type,
            "edit_flag": custom,
            "active_flag": True,
        }
        if options is not None:
            field["options"] = [
                {"id": 1000 + 10 * field_id + index, "label": label}
                for index, label in enumerate(options)
            ]
        self.deal_fields.append(field)
        return field

    def add(
        self, kind: str, item_id: int | None = None, *, at: dt.datetime = T0, **fields
    ) -> int:
        with self._lock:
            if item_id is None:
                self._next_id += 1
                item_id = self._next_id
            row = {
                "id": item_id,
                "add_time": pd_time(at),
                "update_time": pd_time(at),
                "active_flag": True,
            }
            if kind == "deal":
                row.update(status="open", deleted=False, currency="EUR")
            row.update(fields)
            self.items[kind][item_id] = row
            return item_id

    def update(self, kind: str, item_id: int, *, at: dt.datetime, **fields) -> None:
        with self._lock:
            row = self.items[kind][item_id]
            row.update(fields)
            row["update_time"] = pd_time(at)

    def delete(self, kind: str, item_id: int, at: dt.datetime) -> None:
        with self._lock:
            if kind == "deal":
                self.update(kind, item_id, at=at, status="deleted", deleted=True)
            else:
                self.update(kind, item_id, at=at, active_flag=False)

    def merge(self, kind: str, item_id: int, merge_with_id: int, at: dt.datetime):
        """Merge ``item_id`` into ``merge_with_id`` (PUT /v1/{kind}s/{id}/merge).

        Return the response data, which names the deleted record in
        ``merge_what_id``.
        """
        with self._lock:
            field = {"person": "person_id", "deal": "deal_id"}[kind]
            children = ["activity"] + (["deal"] if kind == "person" else [])
            for child in children:
                for row in self.items[child].values():
                    if row.get(field) == item_id:
                        row[field] = merge_with_id
                        row["update_time"] = pd_time(at)
            self.delete(kind, item_id, at)
            self.update(kind, merge_with_id, at=at)
            return {**self.items[kind][merge_with_id], "merge_what_id": item_id}

    def inject(self, status: int, count: int = 1, retry_after: float | None = None):
        with self._lock:
            self._injected.extend([(status, retry_after)] * count)

    # Request statistics

    def requests(self, token: str | None = None, status: int | None = None) -> list:
        return [
            r
            for r in self.log
            if (token is None or r.token == token)
            and (status is None or r.status == status)
        ]

    def max_in_window(self, token: str, window: float) -> int:
        """Return the max requests served below 400 in any ``window`` seconds."""
        times = sorted(r.time for r in self.requests(token) if r.status < 400)
        highest = 0
        start = 0
        for end, moment in enumerate(times):
            while times[start] <= moment - window:
                start += 1
            highest = max(highest, end - start + 1)
        return highest

    # Serving

    def handle(self, method: str, raw_path: str, headers, body: bytes = b""):
        parsed = urlparse(raw_path)
        path = parsed.path.removeprefix("/api")
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        token = headers.get("x-api-token") or query.get("api_token") or bearer
        with self._lock:
            if method == "POST" and path == "/oauth/token":
                return self._token(headers, body)
            expired = self.oauth.check(token, self.oauth_clock.now()) == "expired"
            if expired or token not in self.clocks:
                payload = {
                    "success": False,
                    "error": "unauthorized access",
                    "errorCode": 401,
                    "error_info": "Please check your API token.",
                }
                return self._logged(token, 0.0, method, path, 401, payload, {})
            now = self.clocks[token].now()
            if self._injected:
                status, retry_after = self._injected.popleft()
                extra = {}
                if retry_after is not None:
                    extra["Retry-After"] = f"{retry_after:g}"
                payload = {"success": False, "error": f"Injected HTTP {status}"}
                return self._logged(
                    token, now, method, path, status, payload, extra, True
                )
            limit_headers, over = self._take_slot(token, now)
            if over is not None:
                limit_headers["Retry-After"] = f"{math.ceil(over)}"
                payload = {
                    "success": False,
                    "error": "Request over limit",
                    "errorCode": 429,
                }
                return self._logged(
                    token, now, method, path, 429, payload, limit_headers
                )
            routed = self.writeback_route(method, path, query, body)
            if routed is not None:
                status, payload, write_headers = routed
                limit_headers.update(write_headers)
            else:
                status, payload = self._route(method, path, query)
            return self._logged(
                token, now, method, path, status, payload, limit_headers
            )

    def _token(self, headers, body: bytes):
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        client_id, client_secret = _basic_credentials(headers.get("Authorization"))
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            error, payload = self.oauth.authorization_code(
                grant_type=grant_type,
                client_id=client_id,
                client_secret=client_secret,
                code=form.get("code", ""),
                redirect_uri=form.get("redirect_uri", ""),
                now=self.oauth_clock.now(),
            )
        else:
            error, payload = self.oauth.refresh(
                grant_type=grant_type,
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=form.get("refresh_token", ""),
                now=self.oauth_clock.now(),
            )
        path = "/oauth/token"
        if error is not None:
            payload = _token_error(error, grant_type)
            return self._logged("", 0.0, "POST", path, 400, payload, {})
        self.clocks[payload["access_token"]] = self.oauth_clock
        host, port = self._server.server_address[:2]
        payload = {
            **payload,
            "token_type": "Bearer",
            "scope": "base,deals:read,contacts:read,activities:read,users:read",
            "api_domain": f"http://{host}:{port}",
        }
        return self._logged("", 0.0, "POST", path, 200, payload, {})

    def _logged(
        self, token, now, method, path, status, payload, headers, injected=False
    ):
        self.log.append(LoggedRequest(token, now, method, path, status, injected))
        return status, payload, headers

    def _take_slot(self, token: str, now: float):
        limit, window = self.limit
        times = self._accepted[token]
        while times and times[0] <= now - window:
            times.popleft()
        over = None
        if len(times) >= limit:
            over = times[0] + window - now
        else:
            times.append(now)
        reset = times[0] + window - now if times else window
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - len(times), 0)),
            "x-ratelimit-reset": f"{max(reset, 0):g}",
        }
        return headers, over

    def _route(self, method: str, path: str, query: dict):
        if method != "GET":
            return 404, {"success": False, "error": f"No route for {method} {path}"}
        if path == "/v1/users":
            return 200, {"success": True, "data": list(self.users.values())}
        if path == "/v1/users/me":
            # The token's own user: the first user added.
            if not self.users:
                return 404, {"success": False, "error": "No user found"}
            return 200, {"success": True, "data": next(iter(self.users.values()))}
        if path == "/v1/pipelines":
            return 200, {"success": True, "data": list(self.pipelines.values())}
        if path == "/v1/stages":
            return 200, _paged(list(self.stages.values()), query)
        if path == "/v1/dealFields":
            return 200, _paged(self.deal_fields, query, DEAL_FIELDS_PAGE_MAX)
        if path == "/v1/organizations":
            rows = [self._expand("organization", r) for r in self._live("organization")]
            return 200, _paged(rows, query)
        if path == "/v1/persons":
            rows = [self._expand("person", r) for r in self._live("person")]
            return 200, _paged(rows, query)
        if path == "/v1/deals":
            return self._deals(query)
        if path == "/v1/activities":
            return 200, _paged(self._activities(query), query)
        if path == "/v1/recents":
            return self._recents(query)
        single = self._single(path)
        if single is not None:
            return single
        return 404, {"success": False, "error": f"No route for {method} {path}"}

    def _single(self, path: str):
        """Serve GET /v1/{deals,persons,organizations}/{id}, or None for other paths."""
        kinds = {"deals": "deal", "persons": "person", "organizations": "organization"}
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[1] not in kinds or not parts[2].isdigit():
            return None
        kind = kinds[parts[1]]
        row = self.items[kind].get(int(parts[2]))
        if row is None:
            return 404, {"success": False, "error": "Item not found"}
        return 200, {"success": True, "data": self._expand(kind, row)}

    def _live(self, kind: str) -> list[dict]:
        rows = [r for r in self.items[kind].values() if r.get("active_flag", True)]
        return sorted(rows, key=lambda r: r["id"])

    def _deals(self, query: dict):
        status = query.get("status", "all_not_deleted")
        allowed = {
            "all_not_deleted": {"open", "won", "lost"},
            "open": {"open"},
            "won": {"won"},
            "lost": {"lost"},
            "deleted": {"deleted"},
        }.get(status)
        if allowed is None:
            return 400, {"success": False, "error": f"Invalid status {status!r}"}
        rows = sorted(
            (r for r in self.items["deal"].values() if r["status"] in allowed),
            key=lambda r: r["id"],
        )
        return 200, _paged([self._expand("deal", r) for r in rows], query)

    def _activities(self, query: dict) -> list[dict]:
        types = {t for t in query.get("type", "").split(",") if t}
        user_id = int(query.get("user_id", -1))
        rows = []
        for row in self._live("activity"):
            if types and row.get("type") not in types:
                continue
            # Without user_id Pipedrive lists the token owner's activities only;
            # the fake treats user 1 as the token owner.
            if user_id != 0 and row.get("user_id") != (user_id if user_id > 0 else 1):
                continue
            rows.append(row)
        return rows

    def _recents(self, query: dict):
        since_text = query.get("since_timestamp")
        if not since_text:
            return 400, {"success": False, "error": "since_timestamp is required"}
        since = dt.datetime.fromisoformat(since_text).replace(tzinfo=dt.UTC)
        requested = [k for k in query.get("items", "").split(",") if k] or list(KINDS)
        entries = []
        for kind in requested:
            for row in sorted(self.items.get(kind, {}).values(), key=lambda r: r["id"]):
                updated = dt.datetime.fromisoformat(row["update_time"])
                if updated.replace(tzinfo=dt.UTC) > since:
                    entries.append(
                        {"item": kind, "id": row["id"], "data": self._expand(kind, row)}
                    )
        body = _paged(entries, query)
        body["additional_data"]["since_timestamp"] = since_text
        return 200, body

    def _expand(self, kind: str, row: dict) -> dict:
        """Return a row with its references as the objects v1 lists send."""
        data = dict(row)
        if kind == "deal":
            data["user_id"] = self._user_ref(row.get("user_id"))
            data["org_id"] = self._org_ref(row.get("org_id"))
            data["person_id"] = (
                {"value": row["person_id"]} if row.get("person_id") else None
            )
        elif kind in ("person", "organization"):
            data["owner_id"] = self._user_ref(row.get("owner_id"))
            if kind == "person":
                data["org_id"] = self._org_ref(row.get("org_id"))
        return data

    def _user_ref(self, user_id):
        if user_id is None:
            return None
        user = self.users.get(user_id, {})
        return {
            "id": user_id,
            "name": user.get("name"),
            "email": user.get("email"),
            "active_flag": user.get("active_flag", True),
            "value": user_id,
        }

    def _org_ref(self, org_id):
        if org_id is None:
            return None
        org = self.items["organization"].get(org_id, {})
        return {"name": org.get("name"), "value": org_id}


def _paged(rows: list[dict], query: dict, page_max: int = PAGE_MAX) -> dict:
    start = int(query.get("start", 0))
    limit = min(int(query.get("limit", 100)), page_max)
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return {
        "success": True,
        "data": page or None,
        "additional_data": {"pagination": pagination},
    }


def _basic_credentials(header: str | None) -> tuple[str, str]:
    """Return (user, password) of an HTTP Basic header, or two empty strings."""
    encoded = (header or "").removeprefix("Basic ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _token_error(error: str, grant_type: str) -> dict:
    """Return the error body with the message Pipedrive's status code list gives."""
    if error == REDIRECT_URI_MISMATCH:
        return {
            "success": False,
            "error": "invalid_request",
            "message": "Invalid request: redirect_uri is invalid",
        }
    messages = {
        INVALID_GRANT: f"Invalid grant: {grant_type} is invalid",
        "invalid_client": "Invalid client: client is invalid",
        "unsupported_grant_type": "Unsupported grant type: grant_type is invalid",
    }
    return {"success": False, "error": error, "message": messages[error]}


class _Handler(BaseHTTPRequestHandler):
    fake: FakePipedrive
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.fake.handle(
            "PUT", self.path, self.headers, body
        )
        content = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.fake.handle(
            "POST", self.path, self.headers, body
        )
        content = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, payload, headers = self.fake.handle("GET", self.path, self.headers)
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
