"""Who may use each page and API action, written down as a table per surface.

PAGES lists the server-rendered pages, API the ``/api/v1/`` endpoints. Each
row is one URL name, method and target object, and each column one kind of
visitor:

    anon   no one signed in; on pages, a request that carries only an API key
           must get the same response
    key    an API key of the organisation (API table only)
    other  the admin of another organisation (``outsider``)
    rep    ``rep1``, who reports to ``manager``
    mgr    ``manager``, with ``rep1`` and ``rep2`` below
    vp     ``vp``, with ``manager`` (so ``rep1`` and ``rep2``) and ``rep3`` below
    admin  ``admin`` of the organisation

Every URL is requested under the organisation ``acme``. A cell is the expected
response: an HTTP status, or ``login`` for a 302 to a login page (the account
login page, or the admin's own login page for ``admin/`` URLs). A 302 in the
table is any other redirect. The target names the object in the URL: a
persona (its member id), ``job`` (a validated import job of ``acme``),
``apikey`` (an API key of ``acme``), ``bench`` (an activity benchmark),
``timeoff`` (time off of ``rep1``), ``quota`` (no URL object, but a quota of
``rep1`` in the quarter before the one the payload names), or ``-`` for none.

Routing rows target ``lead`` (a lead of ``acme`` that routing gave to
``rep1``), ``org`` (the public id of ``acme``, in the website form's URL) or
``model`` (a rejected lead-score model of ``acme``). ``acme`` has no
labelled leads, so an allowed "Train now" only redirects with the reason.

Routing configuration rows target ``pool`` (a round-robin pool of ``acme``
with ``rep1`` in it; its URLs name the pool and ``rep1``) or ``territory``
(a territory of ``acme``).

Notification rows target ``notice``: one unread notification each for
``rep1``, ``manager``, ``vp`` and ``admin``, and the URL names ``rep1``'s, which
no one else may mark read.

Commission rows target ``stmt`` (a draft March 2024 statement of ``rep1``),
``stmt4`` (the same for ``rep4``, outside the tree of ``manager`` and ``vp``),
``paidable`` (an approved statement of ``rep1``), ``run`` (a finished
calculation run of ``acme``), ``approval`` (a finished approval run that
``manager`` requested, which ``vp`` may not see) or ``dispute`` (an open
dispute of ``rep1`` on the line of a draft statement like ``stmt``).

Plan builder rows target ``plan`` (a plan of ``acme`` with a published
version and no draft), ``draftv`` (a draft version of another plan, with
one component), ``comp`` (that component), ``assignment`` (``rep2`` on a
plan) or ``fxrate`` (a EUR/USD rate of ``acme``).

CRM integration rows target ``crm``: a HubSpot connection of ``acme`` with an
unmapped CRM owner, a custom-field mapping and a finished sync run, which its
URLs name. The public webhook receivers take no session: the HubSpot one
rejects the unsigned POST (401), and the Pipedrive and Salesforce ones find
no connection of their provider (404). "Sync now" only queues a run: the
task starts after the commit, which the rolled-back requests never reach.
An empty POST to the Salesforce or Pipedrive connect page only shows the
form's errors (200), so no credentials check reaches the network.

Follow-up rows target ``unsub``: the signed unsubscribe token of an address
of ``acme``, which works for anyone, signed in or not. Or they target ``seq``:
a sequence of ``acme`` with one task step, an active enrollment in it of a
deal of ``rep1``, and a second open deal of ``rep1`` that the enrol form picks.

Coaching rows target ``alert`` (an open alert about ``rep1``), ``rule`` (an
organisation-wide built-in rule) or ``teamrule`` (a rule scoped to the team
of ``manager``). Reps do not see alerts, because ``acme`` keeps
``reps_see_own_alerts`` off.

A row named ``<namespace>:*`` covers every URL of that namespace that has no
row of its own; ``admin:*`` uses this because the admin site adds URLs for each
registered model, and all of them are for staff, which no persona is.

Every routed URL needs a GET and a POST row, so a new page cannot be added
without deciding who may use it. A POST that the table denies must leave the
database and the mail outbox unchanged. A POST with a form payload (PAYLOADS)
that the table allows must change the database, which shows that the payload
is a real write that the denied visitors were kept from.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from activity.forms import ImportMappingForm
from activity.models import ImportJob, Lead
from coaching.models import Alert, Rule
from compensation.models import (
    ApprovalRun,
    CalculationRun,
    Dispute,
    PlanComponent,
    PlanVersion,
    Statement,
    StatementLine,
)
from goals.models import ActivityBenchmark, Quota, TimeOff
from integrations.models import (
    CrmConnection,
    CrmWriteback,
    FieldMapping,
    OwnerMapping,
    SyncRun,
)
from notifications.catalog import EVENT_TYPES
from notifications.models import Event, Notification, OutboundDelivery, OutboundSettings
from notifications.services import notify
from routing.models import (
    Assignment,
    LeadModel,
    Pool,
    PoolMember,
    RoutingRule,
    RuleSetVersion,
    ScoringRule,
)
from spm.models import ApiKey, Membership
from spm.rls.scope import orm_statement
from spm.services import api_key_create
from spm.tenancy import tenant_context
from tests.activity.conftest import fixture_bytes, validate
from tests.compensation.conftest import (
    assign,
    flat_component,
    make_plan,
    make_rate,
    publish_version,
)
from tests.conftest import PASSWORD, Personas, login
from tests.measurement.builders import make_deal

LOGIN = "login"
METHODS = ("GET", "POST")

PAGES = """
url-name                              method target  anon  other rep   mgr   vp    admin
home                                  GET    -       login 302   302   302   302   302
home                                  POST   -       login 302   302   302   302   302

measurement:home                      GET    -       login 404   302   302   302   302
measurement:home                      POST   -       login 404   405   405   405   405
measurement:team                      GET    -       login 404   404   200   200   200
measurement:team                      POST   -       login 404   405   405   405   405
measurement:team-funnel               GET    -       login 404   404   200   200   200
measurement:team-funnel               POST   -       login 404   405   405   405   405
measurement:my-performance            GET    -       login 404   200   200   200   200
measurement:my-performance            POST   -       login 404   405   405   405   405
measurement:rep                       GET    rep1    login 404   200   200   200   200
measurement:rep                       GET    rep2    login 404   404   200   200   200
measurement:rep                       GET    rep3    login 404   404   404   200   200
measurement:rep                       GET    rep4    login 404   404   404   404   200
measurement:rep                       GET    manager login 404   404   200   200   200
measurement:rep                       GET    admin   login 404   404   404   404   200
measurement:rep                       POST   rep1    login 404   405   405   405   405

activity:import-list                  GET    -       login 404   404   404   404   200
activity:import-list                  POST   -       login 404   404   404   404   302
activity:import-detail                GET    job     login 404   404   404   404   200
activity:import-detail                POST   job     login 404   404   404   404   405
activity:import-mapping               GET    job     login 404   404   404   404   200
activity:import-mapping               POST   job     login 404   404   404   404   302
activity:import-progress              GET    job     login 404   404   404   404   200
activity:import-progress              POST   job     login 404   404   404   404   405
activity:import-errors                GET    job     login 404   404   404   404   200
activity:import-errors                POST   job     login 404   404   404   404   405
activity:import-start                 GET    job     login 404   404   404   404   405
activity:import-start                 POST   job     login 404   404   404   404   302
activity:import-cancel                GET    job     login 404   404   404   404   405
activity:import-cancel                POST   job     login 404   404   404   404   302

goals:quotas                          GET    -       login 404   404   404   404   200
goals:quotas                          POST   -       login 404   404   404   404   302
goals:quotas-copy                     GET    -       login 404   404   404   404   405
goals:quotas-copy                     POST   quota   login 404   404   404   404   302
goals:quotas-export                   GET    -       login 404   404   404   404   200
goals:quotas-export                   POST   -       login 404   404   404   404   405
goals:quotas-import                   GET    -       login 404   404   404   404   200
goals:quotas-import                   POST   -       login 404   404   404   404   302
goals:quotas-import-errors            GET    -       login 404   404   404   404   200
goals:quotas-import-errors            POST   -       login 404   404   404   404   405
goals:benchmarks                      GET    -       login 404   404   404   404   200
goals:benchmarks                      POST   -       login 404   404   404   404   302
goals:benchmark-edit                  GET    bench   login 404   404   404   404   200
goals:benchmark-edit                  POST   bench   login 404   404   404   404   302
goals:benchmark-delete                GET    bench   login 404   404   404   404   405
goals:benchmark-delete                POST   bench   login 404   404   404   404   302
goals:time-off                        GET    -       login 404   200   200   200   200
goals:time-off                        POST   -       login 404   404   302   302   302
goals:time-off-delete                 GET    timeoff login 404   405   405   405   405
goals:time-off-delete                 POST   timeoff login 404   404   302   302   302

coaching:inbox                        GET    -       login 404   404   200   200   200
coaching:inbox                        POST   -       login 404   405   405   405   405
coaching:alert                        GET    alert   login 404   404   200   200   200
coaching:alert                        POST   alert   login 404   405   405   405   405
coaching:alert-acknowledge            GET    alert   login 404   405   405   405   405
coaching:alert-acknowledge            POST   alert   login 404   404   302   302   302
coaching:alert-resolve                GET    alert   login 404   405   405   405   405
coaching:alert-resolve                POST   alert   login 404   404   302   302   302
coaching:alert-note                   GET    alert   login 404   405   405   405   405
coaching:alert-note                   POST   alert   login 404   404   302   302   302
coaching:rules                        GET    -       login 404   404   200   200   200
coaching:rules                        POST   -       login 404   405   405   405   405
coaching:rule-create                  GET    -       login 404   404   200   403   200
coaching:rule-create                  POST   -       login 404   404   302   403   302
coaching:rule-edit                    GET    rule    login 404   404   403   403   200
coaching:rule-edit                    POST   rule    login 404   404   403   403   302
coaching:rule-edit                    GET    teamrule login 404  404   200   403   200
coaching:rule-edit                    POST   teamrule login 404  404   302   403   302
coaching:rule-toggle                  GET    rule    login 404   405   405   405   405
coaching:rule-toggle                  POST   rule    login 404   404   403   403   302
coaching:rule-toggle                  POST   teamrule login 404  404   302   403   302

routing:mine                          GET    -       login 404   200   200   200   200
routing:mine                          POST   -       login 404   405   405   405   405
routing:queue                         GET    -       login 404   404   200   200   200
routing:queue                         POST   -       login 404   404   405   405   405
routing:lead                          GET    lead    login 404   200   200   200   200
routing:lead                          POST   lead    login 404   405   405   405   405
routing:requalify                     GET    lead    login 404   404   405   405   405
routing:requalify                     POST   lead    login 404   404   302   302   302
routing:assign                        GET    lead    login 404   404   405   405   405
routing:assign                        POST   lead    login 404   404   302   302   302
routing:scoring                       GET    -       login 404   404   404   404   200
routing:scoring                       POST   -       login 404   404   404   404   302
routing:scoring-sample                GET    -       login 404   404   404   404   405
routing:scoring-sample                POST   -       login 404   404   404   404   200
routing:scoring-settings              GET    -       login 404   404   404   404   405
routing:scoring-settings              POST   -       login 404   404   404   404   302
routing:scoring-edit                  GET    scoring login 404   404   404   404   200
routing:scoring-edit                  POST   scoring login 404   404   404   404   302
routing:scoring-delete                GET    scoring login 404   404   404   404   405
routing:scoring-delete                POST   scoring login 404   404   404   404   302
routing:model                         GET    -       login 404   404   200   200   200
routing:model                         POST   -       login 404   404   405   405   405
routing:model-version                 GET    model   login 404   404   200   200   200
routing:model-version                 POST   model   login 404   404   405   405   405
routing:model-train                   GET    -       login 404   404   404   404   405
routing:model-train                   POST   -       login 404   404   404   404   302
routing:rules                         GET    -       login 404   404   404   404   200
routing:rules                         POST   -       login 404   404   404   404   405
routing:rules-edit                    GET    -       login 404   404   404   404   200
routing:rules-edit                    POST   -       login 404   404   404   404   302
routing:pools                         GET    -       login 404   404   404   404   200
routing:pools                         POST   -       login 404   404   404   404   302
routing:pool                          GET    pool    login 404   404   404   404   200
routing:pool                          POST   pool    login 404   404   404   404   302
routing:pool-member-add               GET    pool    login 404   404   404   404   405
routing:pool-member-add               POST   pool    login 404   404   404   404   302
routing:pool-member                   GET    pool    login 404   404   404   404   200
routing:pool-member                   POST   pool    login 404   404   404   404   302
routing:pool-member-pause             GET    pool    login 404   404   404   404   405
routing:pool-member-pause             POST   pool    login 404   404   404   404   302
routing:territories                   GET    -       login 404   404   404   404   200
routing:territories                   POST   -       login 404   404   404   404   405
routing:territory-new                 GET    -       login 404   404   404   404   200
routing:territory-new                 POST   -       login 404   404   404   404   302
routing:territory                     GET    territory login 404 404  404   404   200
routing:territory                     POST   territory login 404 404  404   404   302
routing:test-lead                     GET    -       login 404   404   404   404   200
routing:test-lead                     POST   -       login 404   404   404   404   405
routing:working-hours                 GET    pool    login 404   404   404   404   200
routing:working-hours                 POST   pool    login 404   404   404   404   302
routing-forms:lead                    GET    org     405   405   405   405   405   405
routing-forms:lead                    POST   org     303   303   303   303   303   303
routing-forms:lead-thanks             GET    org     200   200   200   200   200   200
routing-forms:lead-thanks             POST   org     405   405   405   405   405   405

notifications:list                    GET    -       login 404   200   200   200   200
notifications:list                    POST   -       login 404   405   405   405   405
notifications:read-all                GET    notice  login 404   405   405   405   405
notifications:read-all                POST   notice  login 404   302   302   302   302
notifications:read                    GET    notice  login 404   405   405   405   405
notifications:read                    POST   notice  login 404   302   404   404   404
notifications:preferences             GET    -       login 404   200   200   200   200
notifications:preferences             POST   -       login 404   302   302   302   302
notifications:defaults                GET    -       login 404   404   404   404   200
notifications:defaults                POST   -       login 404   404   404   404   302
notifications:webhooks                GET    hook    login 404   404   404   404   200
notifications:webhooks                POST   hook    login 404   404   404   404   405
notifications:outbound-settings       GET    hook    login 404   404   404   404   405
notifications:outbound-settings       POST   hook    login 404   404   404   404   302
notifications:webhook-new             GET    hook    login 404   404   404   404   200
notifications:webhook-new             POST   hook    login 404   404   404   404   302
notifications:webhook                 GET    hook    login 404   404   404   404   200
notifications:webhook                 POST   hook    login 404   404   404   404   405
notifications:webhook-edit            GET    hook    login 404   404   404   404   200
notifications:webhook-edit            POST   hook    login 404   404   404   404   302
notifications:webhook-rotate          GET    hook    login 404   404   404   404   405
notifications:webhook-rotate          POST   hook    login 404   404   404   404   302
notifications:webhook-delete          GET    hook    login 404   404   404   404   405
notifications:webhook-delete          POST   hook    login 404   404   404   404   302
notifications:delivery-resend         GET    hook    login 404   404   404   404   405
notifications:delivery-resend         POST   hook    login 404   404   404   404   302
notifications:chat-new                GET    hook    login 404   404   404   404   200
notifications:chat-new                POST   hook    login 404   404   404   404   302
notifications:chat                    GET    hook    login 404   404   404   404   200
notifications:chat                    POST   hook    login 404   404   404   404   302
notifications:chat-delete             GET    hook    login 404   404   404   404   405
notifications:chat-delete             POST   hook    login 404   404   404   404   302

compensation:mine                     GET    -       login 404   200   200   200   200
compensation:mine                     POST   -       login 404   405   405   405   405
compensation:statements               GET    -       login 404   404   200   200   200
compensation:statements               POST   -       login 404   404   405   405   405
compensation:statements-approve       GET    stmt    login 404   404   405   405   405
compensation:statements-approve       POST   stmt    login 404   404   302   302   302
compensation:statements-approve-all   GET    stmt    login 404   404   405   405   405
compensation:statements-approve-all   POST   stmt    login 404   404   302   302   302
compensation:statements-paid          GET    paidable login 404  404   404   404   405
compensation:statements-paid          POST   paidable login 404  404   404   404   302
compensation:statements-calculate     GET    -       login 404   404   404   404   405
compensation:statements-calculate     POST   -       login 404   404   404   404   302
compensation:payroll-export           GET    -       login 404   404   404   404   200
compensation:payroll-export           POST   -       login 404   404   404   404   405
compensation:run-progress             GET    run     login 404   404   404   404   200
compensation:run-progress             POST   run     login 404   404   404   404   405
compensation:approval-progress        GET    approval login 404  404   200   404   200
compensation:approval-progress        POST   approval login 404  404   405   405   405
compensation:statement                GET    stmt    login 404   200   200   200   200
compensation:statement                GET    stmt4   login 404   404   404   404   200
compensation:statement                POST   stmt    login 404   405   405   405   405
compensation:statement-adjust         GET    stmt    login 404   404   405   405   405
compensation:statement-adjust         POST   stmt    login 404   404   302   302   302
compensation:statement-adjust         POST   stmt4   login 404   404   404   404   302
compensation:disputes                 GET    -       login 404   200   200   200   200
compensation:disputes                 POST   -       login 404   405   405   405   405
compensation:dispute                  GET    dispute login 404   200   200   200   200
compensation:dispute                  POST   dispute login 404   302   302   302   302
compensation:dispute-resolve          GET    dispute login 404   405   405   405   405
compensation:dispute-resolve          POST   dispute login 404   403   302   302   302
compensation:dispute-raise            GET    stmt    login 404   405   405   405   405
compensation:dispute-raise            POST   stmt    login 404   302   403   403   403
compensation:payout-changes           GET    stmt    login 404   200   200   200   200
compensation:payout-changes           GET    stmt4   login 404   404   404   404   200
compensation:payout-changes           POST   stmt    login 404   405   405   405   405
compensation:credits-csv              GET    stmt    login 404   200   200   200   200
compensation:credits-csv              GET    stmt4   login 404   404   404   404   200
compensation:credits-csv              POST   stmt    login 404   405   405   405   405
compensation:whatif                   GET    -       login 404   200   200   200   200
compensation:whatif                   POST   -       login 404   405   405   405   405
compensation:cost                     GET    -       login 404   404   200   200   200
compensation:cost                     POST   -       login 404   404   405   405   405
compensation:crediting-policy         GET    -       login 404   404   404   404   200
compensation:crediting-policy         POST   -       login 404   404   404   404   302
compensation:my-plan                  GET    -       login 404   200   200   200   200
compensation:my-plan                  POST   -       login 404   405   405   405   405
compensation:plans                    GET    -       login 404   404   404   404   200
compensation:plans                    POST   -       login 404   404   404   404   302
compensation:plan                     GET    plan    login 404   404   404   404   200
compensation:plan                     POST   plan    login 404   404   404   404   405
compensation:plan-draft               GET    plan    login 404   404   404   404   405
compensation:plan-draft               POST   plan    login 404   404   404   404   302
compensation:plan-assign              GET    plan    login 404   404   404   404   405
compensation:plan-assign              POST   plan    login 404   404   404   404   302
compensation:assignment-end           GET    assignment login 404 404  404   404   405
compensation:assignment-end           POST   assignment login 404 404  404   404   302
compensation:assignment-delete        GET    assignment login 404 404  404   404   405
compensation:assignment-delete        POST   assignment login 404 404  404   404   302
compensation:version                  GET    draftv  login 404   404   404   404   200
compensation:version                  POST   draftv  login 404   404   404   404   302
compensation:component-new            GET    draftv  login 404   404   404   404   200
compensation:component-new            POST   draftv  login 404   404   404   404   302
compensation:version-publish          GET    draftv  login 404   404   404   404   405
compensation:version-publish          POST   draftv  login 404   404   404   404   302
compensation:version-preview          GET    draftv  login 404   404   404   404   200
compensation:version-preview          POST   draftv  login 404   404   404   404   405
compensation:version-diff             GET    draftv  login 404   404   404   404   200
compensation:version-diff             POST   draftv  login 404   404   404   404   405
compensation:component                GET    comp    login 404   404   404   404   200
compensation:component                POST   comp    login 404   404   404   404   302
compensation:component-delete         GET    comp    login 404   404   404   404   405
compensation:component-delete         POST   comp    login 404   404   404   404   302
compensation:fx-rates                 GET    -       login 404   404   404   404   200
compensation:fx-rates                 POST   -       login 404   404   404   404   302
compensation:fx-rate-delete           GET    fxrate  login 404   404   404   404   405
compensation:fx-rate-delete           POST   fxrate  login 404   404   404   404   302
compensation:fx-import                GET    -       login 404   404   404   404   405
compensation:fx-import                POST   -       login 404   404   404   404   302

followups:list                        GET    -       login 404   404   200   200   200
followups:list                        POST   -       login 404   404   405   405   405
followups:mine                        GET    -       login 404   200   200   200   200
followups:mine                        POST   -       login 404   405   405   405   405
followups:create                      GET    -       login 404   404   200   200   200
followups:create                      POST   -       login 404   404   302   302   302
followups:detail                      GET    seq     login 404   404   200   200   200
followups:detail                      POST   seq     login 404   404   405   405   405
followups:edit                        GET    seq     login 404   404   200   200   200
followups:edit                        POST   seq     login 404   404   302   302   302
followups:enroll                      GET    seq     login 404   404   405   405   405
followups:enroll                      POST   seq     login 404   404   302   302   302
followups:unenroll                    GET    seq     login 404   404   405   405   405
followups:unenroll                    POST   seq     login 404   404   302   302   302
followups-public:unsubscribe          GET    unsub   200   200   200   200   200   200
followups-public:unsubscribe          POST   unsub   200   200   200   200   200   200

integrations:connections              GET    -       login 404   404   404   404   200
integrations:connections              POST   -       login 404   404   404   404   405
integrations:connect-hubspot          GET    -       login 404   404   404   404   200
integrations:connect-hubspot          POST   -       login 404   404   404   404   200
integrations:connect-salesforce       GET    -       login 404   404   404   404   200
integrations:connect-salesforce       POST   -       login 404   404   404   404   200
integrations:connect-pipedrive        GET    -       login 404   404   404   404   200
integrations:connect-pipedrive        POST   -       login 404   404   404   404   200
integrations:oauth-install            GET    -       login 404   404   404   404   405
integrations:oauth-install            POST   -       login 404   404   404   404   404
integrations:oauth-reconnect          GET    crm     login 404   404   404   404   405
integrations:oauth-reconnect          POST   crm     login 404   404   404   404   404
integrations-oauth:callback           GET    -       login 400   400   400   400   400
integrations-oauth:callback           POST   -       login 405   405   405   405   405
integrations:connection               GET    crm     login 404   404   404   404   200
integrations:connection               POST   crm     login 404   404   404   404   405
integrations:connection-edit          GET    crm     login 404   404   404   404   200
integrations:connection-edit          POST   crm     login 404   404   404   404   302
integrations:webhook-settings         GET    crm     login 404   404   404   404   200
integrations:webhook-settings         POST   crm     login 404   404   404   404   302
integrations:sync-now                 GET    crm     login 404   404   404   404   405
integrations:sync-now                 POST   crm     login 404   404   404   404   302
integrations:owners                   GET    crm     login 404   404   404   404   200
integrations:owners                   POST   crm     login 404   404   404   404   302
integrations:stages                   GET    crm     login 404   404   404   404   200
integrations:stages                   POST   crm     login 404   404   404   404   405
integrations:fields                   GET    crm     login 404   404   404   404   200
integrations:fields                   POST   crm     login 404   404   404   404   302
integrations:field-delete             GET    crm     login 404   404   404   404   405
integrations:field-delete             POST   crm     login 404   404   404   404   302
integrations:run-progress             GET    crm     login 404   404   404   404   200
integrations:run-progress             POST   crm     login 404   404   404   404   405
integrations:run-progress-json        GET    crm     login 404   404   404   404   200
integrations:run-progress-json        POST   crm     login 404   404   404   404   405
integrations:writeback-retry          GET    crm     login 404   404   404   404   405
integrations:writeback-retry          POST   crm     login 404   404   404   404   302
integrations-webhooks:hubspot         GET    crm     405   405   405   405   405   405
integrations-webhooks:hubspot         POST   crm     401   401   401   401   401   401
integrations-webhooks:pipedrive       GET    crm     405   405   405   405   405   405
integrations-webhooks:pipedrive       POST   crm     404   404   404   404   404   404
integrations-webhooks:salesforce      GET    crm     405   405   405   405   405   405
integrations-webhooks:salesforce      POST   crm     404   404   404   404   404   404

spm:settings                          GET    -       login 404   404   404   404   200
spm:settings                          POST   -       login 404   404   404   404   302
spm:members                           GET    -       login 404   404   404   404   200
spm:members                           POST   -       login 404   404   404   404   405
spm:member-edit                       GET    rep1    login 404   404   404   404   200
spm:member-edit                       POST   rep1    login 404   404   404   404   302
spm:member-invite                     GET    rep1    login 404   404   404   404   405
spm:member-invite                     POST   rep1    login 404   404   404   404   302
spm:member-remove                     GET    rep1    login 404   404   404   404   405
spm:member-remove                     POST   rep1    login 404   404   404   404   302
spm:audit-log                         GET    -       login 404   404   404   404   200
spm:audit-log                         POST   -       login 404   404   404   404   405
spm:api-keys                          GET    -       login 404   404   404   404   200
spm:api-keys                          POST   -       login 404   404   404   404   405
spm:api-key-create                    GET    -       login 404   404   404   404   405
spm:api-key-create                    POST   -       login 404   404   404   404   200
spm:api-key-revoke                    GET    apikey  login 404   404   404   404   405
spm:api-key-revoke                    POST   apikey  login 404   404   404   404   302

account_login                         GET    -       200   302   302   302   302   302
account_login                         POST   -       200   302   302   302   302   302
account_logout                        GET    -       302   200   200   200   200   200
account_logout                        POST   -       302   302   302   302   302   302
account_inactive                      GET    -       200   200   200   200   200   200
account_inactive                      POST   -       405   405   405   405   405   405
account_signup                        GET    -       200   302   302   302   302   302
account_signup                        POST   -       200   302   302   302   302   302
account_reauthenticate                GET    -       login 200   200   200   200   200
account_reauthenticate                POST   -       login 200   200   200   200   200
account_request_reauthentication_code GET    -       login 302   302   302   302   302
account_request_reauthentication_code POST   -       login 302   302   302   302   302
account_confirm_reauthentication_code GET    -       login 302   302   302   302   302
account_confirm_reauthentication_code POST   -       login 302   302   302   302   302
account_email                         GET    -       login 200   200   200   200   200
account_email                         POST   -       login 302   302   302   302   302
account_email_verification_sent       GET    -       200   200   200   200   200   200
account_email_verification_sent       POST   -       405   405   405   405   405   405
account_change_password               GET    -       login 200   200   200   200   200
account_change_password               POST   -       login 302   302   302   302   302
account_set_password                  GET    -       login 302   302   302   302   302
account_set_password                  POST   -       login 302   302   302   302   302
account_reset_password                GET    -       200   200   200   200   200   200
account_reset_password                POST   -       200   200   200   200   200   200
account_confirm_login_code            GET    -       login 302   302   302   302   302
account_confirm_login_code            POST   -       login 302   302   302   302   302
account_confirm_email                 GET    -       200   200   200   200   200   200
account_confirm_email                 POST   -       404   404   404   404   404   404
account_reset_password_from_key_done  GET    -       200   200   200   200   200   200
account_reset_password_from_key_done  POST   -       405   405   405   405   405   405
account_reset_password_from_key       GET    -       200   200   200   200   200   200
account_reset_password_from_key       POST   -       200   200   200   200   200   200
account_reset_password_done           GET    -       200   200   200   200   200   200
account_reset_password_done           POST   -       405   405   405   405   405   405
mfa_index                             GET    -       login 200   200   200   200   200
mfa_index                             POST   -       login 405   405   405   405   405
mfa_authenticate                      GET    -       login 302   302   302   302   302
mfa_authenticate                      POST   -       login 302   302   302   302   302
mfa_reauthenticate                    GET    -       login 302   302   302   302   302
mfa_reauthenticate                    POST   -       login 302   302   302   302   302
mfa_activate_totp                     GET    -       login 302   302   302   302   302
mfa_activate_totp                     POST   -       login 302   302   302   302   302
mfa_deactivate_totp                   GET    -       login 404   404   404   404   404
mfa_deactivate_totp                   POST   -       login 404   404   404   404   404
mfa_view_recovery_codes               GET    -       login 404   404   404   404   404
mfa_view_recovery_codes               POST   -       login 405   405   405   405   405
mfa_generate_recovery_codes           GET    -       login 302   302   302   302   302
mfa_generate_recovery_codes           POST   -       login 302   302   302   302   302
mfa_download_recovery_codes           GET    -       login 404   404   404   404   404
mfa_download_recovery_codes           POST   -       login 404   404   404   404   404
usersessions_list                     GET    -       login 200   200   200   200   200
usersessions_list                     POST   -       login 302   302   302   302   302

admin:login                           GET    -       200   200   200   200   200   200
admin:login                           POST   -       200   200   200   200   200   200
admin:logout                          GET    -       302   302   302   302   302   302
admin:logout                          POST   -       302   302   302   302   302   302
admin:*                               GET    -       login login login login login login
admin:*                               POST   -       login login login login login login
"""

# Session users name the organisation with ?organization=; an API key is bound
# to its own, and ignores the parameter.
API = """
url-name        method target  anon  key   other rep   mgr   vp    admin
api-rep-metrics GET    -       401   200   404   200   200   200   200
api-rep-metrics POST   -       401   405   404   405   405   405   405
api-deals       GET    -       401   200   404   200   200   200   200
api-deals       POST   -       401   405   404   405   405   405   405
api-leads       GET    -       401   200   403   403   403   403   403
api-leads       POST   -       401   201   403   403   403   403   403
api-lead        GET    lead    401   200   403   403   403   403   403
api-lead        POST   lead    401   405   403   403   403   403   403
api-payroll     GET    -       401   200   404   403   403   403   200
api-payroll     POST   -       401   405   404   405   405   405   405
api-schema      GET    -       200   200   200   200   200   200   200
api-schema      POST   -       405   405   405   405   405   405   405
api-docs        GET    -       200   200   200   200   200   200   200
api-docs        POST   -       405   405   405   405   405   405   405
"""
API_QUERY = "?organization=acme&start=2024-01-01&end=2024-04-01"

# Column name -> the persona attribute it signs in as; None and "key" sign in
# no one.
COLUMNS: dict[str, str | None] = {
    "anon": None,
    "key": None,
    "other": "outsider",
    "rep": "rep1",
    "mgr": "manager",
    "vp": "vp",
    "admin": "admin",
}
DENIED = {LOGIN, 401, 403, 404, 405}

# Values for URL parameters that name no object of the matrix: links that
# allauth and the admin site treat as invalid or unknown.
PATH_VALUES = {
    "org_slug": "acme",
    # No OAuth 2 app is set up in the tests, so its install pages are 404.
    "provider": "hubspot",
    "key": "not-a-valid-key",
    "uidb36": "0",
    "object_id": "1",
    "content_type_id": "1",
    "app_label": "auth",
    "url": "no-such-page/",
}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    target: str
    expected: dict[str, int | str]
    api: bool


@dataclass(frozen=True)
class Route:
    name: str
    namespace: str
    pattern: str

    @property
    def label(self) -> str:
        return self.name or f"unnamed {self.pattern!r}"


@dataclass(frozen=True)
class Case:
    row: Row
    route: Route

    def __str__(self) -> str:
        target = "" if self.row.target == "-" else f" {self.row.target}"
        return f"{self.row.method} {self.route.name or self.route.pattern}{target}"


@pytest.fixture(autouse=True)
def credentials_key(monkeypatch):
    """Set the key that encrypts webhook secrets and chat URLs."""
    monkeypatch.setenv("ATTAIN_CREDENTIALS_KEY", "role-matrix-credentials-key")


@pytest.fixture(autouse=True)
def empty_cache():
    """Start with no sign-in or API rate-limit counts left by earlier tests."""
    cache.clear()
    yield
    cache.clear()


def _cell(text: str) -> int | str:
    return LOGIN if text == LOGIN else int(text)


def parse_table(table: str, *, api: bool) -> list[Row]:
    """Parse a whitespace-aligned table whose first line names its columns."""
    header, *lines = [line for line in table.strip().splitlines() if line.strip()]
    columns = header.split()[3:]
    assert set(columns) <= set(COLUMNS), f"unknown columns in {header!r}"
    rows = []
    for line in lines:
        name, method, target, *cells = line.split()
        assert method in METHODS, f"unknown method: {line!r}"
        assert len(cells) == len(columns), f"wrong number of cells: {line!r}"
        expected = {
            column: _cell(cell) for column, cell in zip(columns, cells, strict=True)
        }
        rows.append(Row(name, method, target, expected, api))
    keys = [(row.name, row.method, row.target) for row in rows]
    assert len(keys) == len(set(keys)), "a row is listed twice"
    return rows


def _walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = (
                    f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                )
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = entry.name and (
                f"{namespace}:{entry.name}" if namespace else entry.name
            )
            yield Route(name or "", namespace, prefix + str(entry.pattern))


ROWS = parse_table(PAGES, api=False) + parse_table(API, api=True)
ROUTES = list(_walk(get_resolver().url_patterns))
EXPLICIT = {row.name for row in ROWS if not row.name.endswith(":*")}


def _wildcard_covers(row: Row, route: Route) -> bool:
    namespace = row.name.removesuffix(":*")
    return (
        row.name.endswith(":*")
        and route.namespace == namespace
        and route.name not in EXPLICIT
    )


def _routes_of(row: Row) -> list[Route]:
    if row.name.endswith(":*"):
        return [route for route in ROUTES if _wildcard_covers(row, route)]
    return [route for route in ROUTES if route.name == row.name]


def _cases(api: bool) -> list[Case]:
    return [
        Case(row, route) for row in ROWS if row.api == api for route in _routes_of(row)
    ]


# Path syntax: (?P<name>regex) in re_path() patterns, <converter:name> in path().
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _url(route: Route, values: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in values:
            pytest.fail(
                f"URL parameter <{name}> of {route.label} has no value: give the "
                "row a target, or add the parameter to PATH_VALUES."
            )
        return values[name]

    path = CONVERTER.sub(replace, REGEX_GROUP.sub(replace, route.pattern))
    return "/" + path.replace("^", "").replace("$", "")


def _goal_benchmark(personas: Personas) -> dict[str, str]:
    benchmark = ActivityBenchmark.unscoped.create(
        organization=personas.org, activity_type="call", target=Decimal("10")
    )
    return {"benchmark_id": str(benchmark.public_id)}


def _goal_time_off(personas: Personas) -> dict[str, str]:
    entry = TimeOff.unscoped.create(
        organization=personas.org,
        member=personas.rep1,
        start_date=dt.date(2024, 3, 4),
        end_date=dt.date(2024, 3, 8),
    )
    return {"time_off_id": str(entry.public_id)}


def _goal_previous_quota(personas: Personas) -> dict[str, str]:
    """Give rep1 a quota in Q4 2023, which the copy into Q1 2024 copies."""
    Quota.unscoped.create(
        organization=personas.org,
        member=personas.rep1,
        period_start=dt.date(2023, 10, 1),
        period_end=dt.date(2024, 1, 1),
        amount=Decimal("1000.00"),
        currency="USD",
    )
    return {}


# Target -> a function that creates the goals object and returns URL values.
GOAL_TARGETS: dict[str, Callable[[Personas], dict[str, str]]] = {
    "bench": _goal_benchmark,
    "timeoff": _goal_time_off,
    "quota": _goal_previous_quota,
}


def _coaching_alert(personas: Personas) -> dict[str, str]:
    with tenant_context(personas.org):
        rule = Rule.objects.get(builtin_key="win_rate_below_team")
    alert = Alert.unscoped.create(
        organization=personas.org,
        rule=rule,
        member=personas.rep1,
        period_key="rolling",
        value=Decimal("20"),
        threshold=Decimal("35"),
    )
    return {"alert_id": str(alert.public_id)}


def _coaching_rule(personas: Personas) -> dict[str, str]:
    with tenant_context(personas.org):
        rule = Rule.objects.get(builtin_key="win_rate_below_team")
    return {"rule_id": str(rule.public_id)}


def _coaching_team_rule(personas: Personas) -> dict[str, str]:
    rule = Rule.unscoped.create(
        organization=personas.org,
        name="East win rate",
        metric="win_rate",
        comparator="lt",
        threshold_kind="absolute",
        threshold_value=Decimal("25"),
        team=personas.manager.team,
    )
    return {"rule_id": str(rule.public_id)}


def _routing_lead(personas: Personas) -> dict[str, str]:
    from routing.services import lead_route

    org = personas.org
    with tenant_context(org):
        pool = Pool.objects.create(
            organization=org, name="Matrix", method="round_robin"
        )
        PoolMember.objects.create(organization=org, pool=pool, member=personas.rep1)
        version = RuleSetVersion.objects.create(organization=org, number=1)
        RoutingRule.objects.create(
            organization=org,
            version=version,
            order=1,
            name="All",
            action="pool",
            pool=pool,
        )
        lead = Lead.objects.create(
            organization=org, email="matrix.lead@acme.test", routing_status="pending"
        )
        lead_route(lead_id=lead.pk)
    return {"lead_id": str(lead.public_id)}


def _routing_scoring_rule(personas: Personas) -> dict[str, str]:
    with tenant_context(personas.org):
        rule = ScoringRule.objects.create(
            organization=personas.org,
            name="Matrix",
            field="industry",
            operator="equals",
            value="Software",
            points=10,
        )
    return {"scoring_rule_id": str(rule.public_id)}


def _routing_lead_model(personas: Personas) -> dict[str, str]:
    model = LeadModel.unscoped.create(
        organization=personas.org,
        version=1,
        status="rejected",
        training_rows=8,
        test_rows=2,
        converted_rows=5,
        auc=0.5,
        artifact=b"",
    )
    return {"lead_model_id": str(model.public_id)}


def _routing_pool(personas: Personas) -> dict[str, str]:
    from routing import configuration

    with tenant_context(personas.org):
        pool = configuration.pool_create(
            organization=personas.org, actor=None, name="Matrix", method="round_robin"
        )
        configuration.pool_member_add(pool=pool, member=personas.rep1, actor=None)
    return {"pool_id": str(pool.public_id), "member_id": str(personas.rep1.public_id)}


def _routing_territory(personas: Personas) -> dict[str, str]:
    from routing import configuration

    with tenant_context(personas.org):
        territory = configuration.territory_create(
            organization=personas.org,
            actor=None,
            name="Matrix",
            conditions=[{"field": "country", "operator": "equals", "value": "DE"}],
        )
    return {"territory_id": str(territory.public_id)}


def _routing_org(personas: Personas) -> dict[str, str]:
    return {"organization_id": str(personas.org.public_id)}


# Target -> a function that creates the routing object and returns URL values.
ROUTING_TARGETS: dict[str, Callable[[Personas], dict[str, str]]] = {
    "lead": _routing_lead,
    "org": _routing_org,
    "scoring": _routing_scoring_rule,
    "pool": _routing_pool,
    "territory": _routing_territory,
    "model": _routing_lead_model,
}


def _notification_notice(personas: Personas) -> dict[str, str]:
    readers = [personas.rep1, personas.manager, personas.vp, personas.admin]
    event = notify(personas.org, "lead.assigned", readers, title="Matrix lead")
    with tenant_context(personas.org):
        notice = Notification.objects.get(event=event, member=personas.rep1)
    return {"notification_id": str(notice.public_id)}


def _notification_hook(personas: Personas) -> dict[str, str]:
    """Create a webhook endpoint, a chat connection and a delivery, all on loopback."""
    from notifications import outbound_services

    org = personas.org
    with tenant_context(org):
        outbound_services.outbound_settings_save(
            organization=org, actor=None, allow_private_addresses=True
        )
        endpoint, _secret = outbound_services.endpoint_create(
            organization=org,
            actor=None,
            url="https://127.0.0.1:9/matrix",
            description="Matrix",
            event_types=["lead.assigned"],
        )
        chat = outbound_services.chat_create(
            organization=org,
            actor=None,
            kind="slack",
            team=None,
            url="https://127.0.0.1:9/chat",
        )
        event = Event.objects.create(organization=org, type="lead.assigned")
        delivery = OutboundDelivery.objects.create(
            organization=org,
            event=event,
            kind=OutboundDelivery.Kind.WEBHOOK,
            endpoint=endpoint,
            request_body="{}",
        )
    return {
        "endpoint_id": str(endpoint.public_id),
        "chat_id": str(chat.public_id),
        "delivery_id": str(delivery.public_id),
    }


# Target -> a function that creates the notifications and returns URL values.
NOTIFICATION_TARGETS: dict[str, Callable[[Personas], dict[str, str]]] = {
    "notice": _notification_notice,
    "hook": _notification_hook,
}


def _followups_unsubscribe(personas: Personas) -> dict[str, str]:
    from followups.services import unsubscribe_token

    return {"token": unsubscribe_token(personas.org.pk, "pat@initech.test")}


def _followups_sequence(personas: Personas) -> dict[str, str]:
    from followups.models import Sequence, Step
    from followups.services import enroll

    with tenant_context(personas.org):
        sequence = Sequence.objects.create(organization=personas.org, name="Matrix")
        Step.objects.create(
            organization=personas.org, sequence=sequence, order=1, action="task"
        )
        enrolled = make_deal(personas.rep1, personas.stages["Prospecting"], "100.00")
        free = make_deal(personas.rep1, personas.stages["Prospecting"], "200.00")
        enrollment = enroll(sequence=sequence, target=enrolled)
    return {
        "sequence_id": str(sequence.public_id),
        "enrollment_id": str(enrollment.public_id),
        "free_deal": f"deal:{free.public_id}",
    }


def _compensation_statement(member, status: str = "draft") -> Statement:
    statement = Statement.unscoped.create(
        organization_id=member.organization_id,
        member=member,
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        currency="USD",
        total=Decimal("100.00"),
        status=status,
        approved_at=None if status == "draft" else dt.datetime.now(dt.UTC),
    )
    StatementLine.unscoped.create(
        organization_id=member.organization_id,
        statement=statement,
        explanation="1,000.00 x 10% = 100.00",
        amount=Decimal("100.00"),
    )
    return statement


def _compensation_values(member, status: str = "draft") -> dict[str, str]:
    statement = _compensation_statement(member, status)
    return {"statement_id": str(statement.public_id)}


def _compensation_run(personas: Personas) -> dict[str, str]:
    run = CalculationRun.unscoped.create(
        organization=personas.org,
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        status="done",
        progress=100,
    )
    return {"run_id": str(run.public_id)}


def _approval_run(personas: Personas) -> dict[str, str]:
    run = ApprovalRun.unscoped.create(
        organization=personas.org,
        period_start=dt.date(2024, 3, 1),
        period_end=dt.date(2024, 4, 1),
        status="done",
        progress=100,
        requested_by=personas.manager,
    )
    return {"run_id": str(run.public_id)}


def _plan_values(personas: Personas) -> dict[str, str]:
    plan = make_plan(personas.org.pk, "Matrix plan")
    publish_version(plan, [flat_component("0.1")])
    return {"plan_id": str(plan.public_id)}


def _draft_version_values(personas: Personas) -> dict[str, str]:
    plan = make_plan(personas.org.pk, "Draft plan")
    version = PlanVersion.unscoped.create(
        organization=personas.org,
        plan=plan,
        number=1,
        effective_from=dt.date(2024, 1, 1),
    )
    component = PlanComponent.unscoped.create(
        organization=personas.org,
        version=version,
        name="Base",
        kind="flat",
        params={"rate": "0.1"},
    )
    return {
        "version_id": str(version.public_id),
        "component_id": str(component.public_id),
    }


def _plan_assignment_values(personas: Personas) -> dict[str, str]:
    plan = make_plan(personas.org.pk, "Assigned plan")
    assignment = assign(personas.rep2, plan)
    return {"assignment_id": str(assignment.public_id)}


def _fx_rate_values(personas: Personas) -> dict[str, str]:
    make_rate(personas.org.pk, "EUR", "USD", dt.date(2024, 3, 1), "1.08")
    return {}


def _compensation_dispute(member) -> dict[str, str]:
    statement = _compensation_statement(member)
    line = StatementLine.unscoped.get(statement=statement)
    dispute = Dispute.unscoped.create(
        organization_id=member.organization_id,
        statement=statement,
        line=line,
        line_explanation=line.explanation,
        line_amount=line.amount,
        raised_by=member,
    )
    return {"dispute_id": str(dispute.public_id)}


def _statement_line(objects: MatrixObjects) -> str:
    statement_id = objects.compensation_values["statement_id"]
    return str(StatementLine.unscoped.get(statement__public_id=statement_id).public_id)


# Target -> a function that creates the compensation object and returns URL values.
COMPENSATION_TARGETS: dict[str, Callable[[Personas], dict[str, str]]] = {
    "stmt": lambda personas: _compensation_values(personas.rep1),
    "stmt4": lambda personas: _compensation_values(personas.rep4),
    "paidable": lambda personas: _compensation_values(personas.rep1, "approved"),
    "run": _compensation_run,
    "approval": _approval_run,
    "dispute": lambda personas: _compensation_dispute(personas.rep1),
    "plan": _plan_values,
    "draftv": _draft_version_values,
    "comp": _draft_version_values,
    "assignment": _plan_assignment_values,
    "fxrate": _fx_rate_values,
}


# Target -> a function that creates the coaching object and returns URL values.
COACHING_TARGETS: dict[str, Callable[[Personas], dict[str, str]]] = {
    "alert": _coaching_alert,
    "rule": _coaching_rule,
    "teamrule": _coaching_team_rule,
}


def _crm_connection(personas: Personas) -> dict[str, str]:
    """Create a HubSpot connection, an unmapped owner, a field mapping and a run."""
    connection = CrmConnection.unscoped.create(
        organization=personas.org,
        provider="hubspot",
        name="Matrix HubSpot",
        base_url="http://127.0.0.1:9/",
    )
    owner = OwnerMapping.unscoped.create(
        organization=personas.org, connection=connection, owner_id="77"
    )
    mapping = FieldMapping.unscoped.create(
        organization=personas.org,
        connection=connection,
        crm_property="dealtype",
        target="deal_type",
    )
    run = SyncRun.unscoped.create(
        organization=personas.org,
        connection=connection,
        kind="full",
        status="succeeded",
    )
    writeback = _crm_failed_writeback(personas, connection)
    return {
        "connection_id": str(connection.public_id),
        "writeback_id": str(writeback.public_id),
        "field_mapping_id": str(mapping.public_id),
        "sync_run_id": str(run.public_id),
        "owner_mapping_pk": str(owner.pk),
        "organization_id": str(personas.org.public_id),
        "token": "not-the-webhook-token",
    }


def _crm_failed_writeback(personas: Personas, connection) -> CrmWriteback:
    """Create a failed write-back of a lead that routing gave to ``rep1``."""
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    lead = Lead.unscoped.create(
        organization=personas.org, email="writeback@matrix.test", received_at=at
    )
    assignment = Assignment.unscoped.create(
        organization=personas.org,
        lead=lead,
        outcome=Assignment.Outcome.ASSIGNED,
        member=personas.rep1,
        received_at=at,
        routed_at=at,
    )
    return CrmWriteback.unscoped.create(
        organization=personas.org,
        assignment=assignment,
        connection=connection,
        status=CrmWriteback.Status.FAILED,
        attempts=6,
        error="Matrix failure",
    )


def _allow_loopback_crm(objects: MatrixObjects) -> None:
    """Let the organisation save a loopback API address, as a self-hosted install."""
    OutboundSettings.unscoped.get_or_create(
        organization=objects.personas.org, defaults={"allow_private_addresses": True}
    )


def _crm_settings(objects: MatrixObjects) -> dict:
    _allow_loopback_crm(objects)
    return {
        "name": "Matrix renamed",
        "base_url": "https://127.0.0.1:9/",
        "api_tier": "professional",
        "status": "active",
        "access_token": "",
    }


def _crm_webhook_settings(objects: MatrixObjects) -> dict:
    return {"secret": "matrix-app-client-secret"}


def _crm_owners(objects: MatrixObjects) -> dict:
    owner_field = f"owner-{objects.crm_values['owner_mapping_pk']}"
    return {owner_field: str(objects.personas.rep1.public_id)}


def _crm_field(objects: MatrixObjects) -> dict:
    return {"object_type": "deals", "crm_property": "segment", "target": "segment"}


class MatrixObjects:
    """The objects that the rows of one test target, made before any request."""

    def __init__(self, personas: Personas, target: str) -> None:
        self.personas = personas
        self.api_key_row, self.api_key = api_key_create(
            organization=personas.org, name="matrix"
        )
        self.job: ImportJob | None = None
        if target == "job":
            files = {"products.csv": fixture_bytes("products.csv")}
            self.job = validate(personas.org, files)
        self.goal_values: dict[str, str] = {}
        if target in GOAL_TARGETS:
            self.goal_values = GOAL_TARGETS[target](personas)
        self.coaching_values: dict[str, str] = {}
        if target in COACHING_TARGETS:
            self.coaching_values = COACHING_TARGETS[target](personas)
        self.routing_values: dict[str, str] = {}
        if target in ROUTING_TARGETS:
            self.routing_values = ROUTING_TARGETS[target](personas)
        self.notification_values: dict[str, str] = {}
        if target in NOTIFICATION_TARGETS:
            self.notification_values = NOTIFICATION_TARGETS[target](personas)
        self.followup_values: dict[str, str] = {}
        if target == "unsub":
            self.followup_values = _followups_unsubscribe(personas)
        elif target == "seq":
            self.followup_values = _followups_sequence(personas)
        self.compensation_values: dict[str, str] = {}
        if target in COMPENSATION_TARGETS:
            self.compensation_values = COMPENSATION_TARGETS[target](personas)
        self.crm_values: dict[str, str] = {}
        if target == "crm":
            self.crm_values = _crm_connection(personas)

    def path_values(self, target: str) -> dict[str, str]:
        values = dict(PATH_VALUES)
        if target == "job":
            values["job_id"] = str(self.job.public_id)
        elif target == "apikey":
            values["key_id"] = str(self.api_key_row.public_id)
        elif target in GOAL_TARGETS:
            values.update(self.goal_values)
        elif target in COACHING_TARGETS:
            values.update(self.coaching_values)
        elif target in ROUTING_TARGETS:
            values.update(self.routing_values)
        elif target in NOTIFICATION_TARGETS:
            values.update(self.notification_values)
        elif target in ("unsub", "seq"):
            values.update(self.followup_values)
        elif target in COMPENSATION_TARGETS:
            values.update(self.compensation_values)
        elif target == "crm":
            values.update(self.crm_values)
        elif target != "-":
            values["member_id"] = str(getattr(self.personas, target).public_id)
        return values


def _import_upload(objects: MatrixObjects) -> dict:
    upload = SimpleUploadedFile("products.csv", fixture_bytes("products.csv"))
    return {"files": [upload], "preset": ""}


def _import_mapping(objects: MatrixObjects) -> dict:
    """Return the mapping form's initial values, as a browser would post them."""
    with tenant_context(objects.personas.org):
        form = ImportMappingForm(files=objects.job.files.defer("content"))
        return {
            name: field.initial or ""
            for name, field in form.fields.items()
            if name != "save_preset_as"
        }


def _organization_settings(objects: MatrixObjects) -> dict:
    return {
        "name": "Acme Renamed",
        "time_zone": "Europe/Berlin",
        "currency": "EUR",
        "fiscal_year_start_month": 4,
    }


def _member_edit(objects: MatrixObjects) -> dict:
    rep1 = objects.personas.rep1
    return {
        "display_name": "Rita Renamed",
        "role": Membership.Role.REP,
        "reports_to": objects.personas.manager.pk,
        "team": rep1.team_id,
        "is_active": "on",
    }


def _member_invite(objects: MatrixObjects) -> dict:
    return {"email": "rita.invited@acme.test"}


def _api_key_new(objects: MatrixObjects) -> dict:
    return {"name": "Matrix warehouse"}


def _quota_grid_save(objects: MatrixObjects) -> dict:
    rep1 = objects.personas.rep1
    return {"on": "2024-01-01", "metric": "bookings", f"member-{rep1.public_id}": "5"}


def _quota_copy(objects: MatrixObjects) -> dict:
    return {"on": "2024-01-01", "metric": "bookings"}


def _quota_import(objects: MatrixObjects) -> dict:
    content = b"email,period_start,amount\nrita.rep@acme.test,2024-01-01,500\n"
    return {"file": SimpleUploadedFile("quotas.csv", content)}


def _benchmark_form(objects: MatrixObjects) -> dict:
    return {
        "activity_type": "email",
        "target": "15",
        "unit": "week",
        "applies_to": "everyone",
        "ramp": "50, 75",
    }


def _time_off_add(objects: MatrixObjects) -> dict:
    return {
        "member": str(objects.personas.rep1.public_id),
        "kind": "vacation",
        "start_date": "2024-05-06",
        "end_date": "2024-05-10",
    }


def _coaching_note(objects: MatrixObjects) -> dict:
    return {"kind": "conversation", "body": "Agreed on two demos a week."}


def _coaching_rule_form(objects: MatrixObjects) -> dict:
    return {
        "name": "East activity",
        "metric": "activity_vs_benchmark",
        "comparator": "lt",
        "threshold_kind": "target_multiple",
        "threshold_value": "0.5",
        "min_sample": "0",
        "window": "business_days",
        "window_days": "10",
        "cooldown_days": "7",
        "recovery_window_days": "14",
        "team": objects.personas.manager.team_id,
        "severity": "warning",
        "is_active": "on",
    }


def _password_change(objects: MatrixObjects) -> dict:
    new_password = "Matrix-new-pw-8841"
    return {
        "oldpassword": PASSWORD,
        "password1": new_password,
        "password2": new_password,
    }


def _email_add(objects: MatrixObjects) -> dict:
    return {"action_add": "", "email": "second.address@acme.test"}


def _scoring_rule_form(objects: MatrixObjects) -> dict:
    return {
        "name": "Matrix size",
        "kind": "fit",
        "field": "company_size",
        "operator": "range",
        "value": "200..1000",
        "points": "25",
        "is_active": "on",
    }


def _rule_set_publish(objects: MatrixObjects) -> dict:
    return {
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-order": "1",
        "rules-0-name": "Matrix hold",
        "rules-0-action": "fallback",
        "based_on": "0",
        "note": "Matrix",
        "publish": "1",
    }


def _pool_form(objects: MatrixObjects) -> dict:
    return {"name": "Matrix weighted", "method": "weighted"}


def _pool_member_add(objects: MatrixObjects) -> dict:
    return {"member": str(objects.personas.rep2.public_id), "weight": "2"}


def _pool_member_edit(objects: MatrixObjects) -> dict:
    return {"position": "1", "weight": "3", "cap_per_day": "", "cap_open": ""}


def _pool_member_pause(objects: MatrixObjects) -> dict:
    return {"paused": "1"}


def _qualification_settings_form(objects: MatrixObjects) -> dict:
    return {
        "mql_threshold": "40",
        "sql_threshold": "70",
        "duplicate_window_days": "30",
        "competitor_domains": "rival.example",
    }


def _working_hours_form(objects: MatrixObjects) -> dict:
    return {
        "time_zone": "Europe/Berlin",
        "days": ["1", "2"],
        "start": "09:00",
        "end": "17:00",
    }


def _territory_form(objects: MatrixObjects) -> dict:
    return {
        "name": "Matrix DACH",
        "conditions-TOTAL_FORMS": "1",
        "conditions-INITIAL_FORMS": "0",
        "conditions-0-field": "country",
        "conditions-0-operator": "in",
        "conditions-0-value": "DE, AT, CH",
    }


def _lead_form(objects: MatrixObjects) -> dict:
    return {"email": "matrix.visitor@example.test", "company": "Matrix"}


def _notification_channels(objects: MatrixObjects) -> dict:
    """Return the catalogue's channels with email turned on for every type."""
    data = {"time_zone": "", "quiet_start": "", "quiet_end": ""}
    for event_type in EVENT_TYPES:
        prefix = event_type.key.replace(".", "-")
        if "in_app" in event_type.default_channels:
            data[f"{prefix}-in_app"] = "on"
        data[f"{prefix}-email"] = "email"
    return data


def _statement_selection(objects: MatrixObjects) -> dict:
    return {
        "statement": [objects.compensation_values["statement_id"]],
        "period": "2024-03",
    }


def _sequence_form(objects: MatrixObjects) -> dict:
    return {
        "name": "Matrix follow-up",
        "trigger": "manual",
        "is_active": "on",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-0-delay_amount": "1",
        "steps-0-delay_unit": "business_days",
        "steps-0-action": "task",
        "steps-0-subject": "Call {{ first_name }}",
    }


# URL name -> the form a POST sends. A POST of a name not listed sends no data.
PAYLOADS: dict[str, Callable[[MatrixObjects], dict]] = {
    "integrations:connection-edit": _crm_settings,
    "integrations:webhook-settings": _crm_webhook_settings,
    "integrations:owners": _crm_owners,
    "integrations:fields": _crm_field,
    "activity:import-list": _import_upload,
    "activity:import-mapping": _import_mapping,
    "spm:settings": _organization_settings,
    "spm:member-edit": _member_edit,
    "spm:member-invite": _member_invite,
    "account_change_password": _password_change,
    "account_email": _email_add,
    "spm:api-key-create": _api_key_new,
    "coaching:alert-note": _coaching_note,
    "coaching:rule-create": _coaching_rule_form,
    "coaching:rule-edit": _coaching_rule_form,
    "goals:quotas": _quota_grid_save,
    "goals:quotas-copy": _quota_copy,
    "goals:quotas-import": _quota_import,
    "goals:benchmarks": _benchmark_form,
    "goals:benchmark-edit": _benchmark_form,
    "goals:time-off": _time_off_add,
    "routing-forms:lead": _lead_form,
    "routing:scoring": _scoring_rule_form,
    "routing:scoring-edit": _scoring_rule_form,
    "routing:rules-edit": _rule_set_publish,
    "routing:pools": _pool_form,
    "routing:pool": _pool_form,
    "routing:pool-member-add": _pool_member_add,
    "routing:pool-member": _pool_member_edit,
    "routing:pool-member-pause": _pool_member_pause,
    "routing:territory-new": _territory_form,
    "routing:territory": _territory_form,
    "routing:working-hours": _working_hours_form,
    "routing:scoring-settings": _qualification_settings_form,
    "api-leads": _lead_form,
    "notifications:preferences": _notification_channels,
    "notifications:defaults": _notification_channels,
    "notifications:outbound-settings": lambda objects: {},
    "notifications:webhook-new": lambda objects: {
        "url": "https://127.0.0.1:9/new",
        "description": "Matrix",
        "event_types": ["lead.assigned"],
    },
    "notifications:webhook-edit": lambda objects: {
        "url": "https://127.0.0.1:9/edited",
        "description": "Matrix",
        "event_types": ["lead.assigned", "import.failed"],
        "is_active": "on",
    },
    "notifications:chat-new": lambda objects: {
        "kind": "teams",
        "team": "",
        "url": "https://127.0.0.1:9/teams",
    },
    "notifications:chat": lambda objects: {
        "kind": "teams",
        "team": "",
        "url": "",
        "is_active": "on",
    },
    "compensation:statements-approve": _statement_selection,
    "compensation:statements-paid": _statement_selection,
    "compensation:statements-approve-all": lambda objects: {"period": "2024-03"},
    "compensation:statements-calculate": lambda objects: {"period": "2024-03"},
    "compensation:plans": lambda objects: {
        "name": "New plan",
        "currency": "USD",
        "effective_from": "2024-01-01",
    },
    "compensation:plan-draft": lambda objects: {"effective_from": "2024-07-01"},
    "compensation:assignment-end": lambda objects: {"end_date": "2024-12-31"},
    "compensation:plan-assign": lambda objects: {
        "member": str(objects.personas.rep1.public_id),
        "start_date": "2024-01-01",
    },
    "compensation:version": lambda objects: {
        "effective_from": "2024-02-01",
        "payout_timing": "at_close",
        "fx_rate_date": "close_date",
        "clawback": "",
        "clawback_term_months": "12",
    },
    "compensation:component-new": lambda objects: {
        "name": "Extra",
        "kind": "flat",
        "order": "1",
        "rate": "5",
    },
    "compensation:component": lambda objects: {
        "name": "Base",
        "kind": "flat",
        "order": "1",
        "rate": "12",
    },
    "compensation:fx-rates": lambda objects: {
        "date": "2024-03-02",
        "base_currency": "EUR",
        "quote_currency": "USD",
        "rate": "1.09",
    },
    "compensation:fx-rate-delete": lambda objects: {
        "date": "2024-03-01",
        "base_currency": "EUR",
        "quote_currency": "USD",
    },
    "compensation:fx-import": lambda objects: {
        "file": SimpleUploadedFile(
            "rates.csv", b"date,from,to,rate\n2024-03-05,GBP,USD,1.27\n"
        )
    },
    "followups:create": _sequence_form,
    "followups:edit": _sequence_form,
    "followups:enroll": lambda objects: {
        "target": objects.followup_values["free_deal"]
    },
    "compensation:statement-adjust": lambda objects: {
        "amount": "10.00",
        "reason": "Matrix",
    },
    "compensation:dispute": lambda objects: {"message": "Matrix reply"},
    "compensation:dispute-resolve": lambda objects: {
        "root_cause": "edge_case",
        "resolution": "Matrix",
    },
    "compensation:dispute-raise": lambda objects: {
        "line": _statement_line(objects),
        "message": "Matrix dispute",
    },
    "compensation:crediting-policy": lambda objects: {
        "reassigned_lead_rule": "split_even",
        "first_owner_percent": "50",
    },
}
# Actions that write with no form data.
WRITES_WITHOUT_PAYLOAD = {
    "compensation:assignment-delete",
    "compensation:version-publish",
    "compensation:component-delete",
    "activity:import-start",
    "activity:import-cancel",
    "spm:member-remove",
    "spm:api-key-revoke",
    "coaching:alert-acknowledge",
    "coaching:alert-resolve",
    "coaching:rule-toggle",
    "goals:benchmark-delete",
    "goals:time-off-delete",
    "routing:scoring-delete",
    "notifications:read",
    "notifications:read-all",
    "notifications:webhook-rotate",
    "notifications:webhook-delete",
    "notifications:delivery-resend",
    "notifications:chat-delete",
    "followups-public:unsubscribe",
    "followups:unenroll",
    "integrations:sync-now",
    "integrations:field-delete",
    "integrations:writeback-retry",
}


# Columns that record access rather than state: every request that
# authenticates with an API key stores when the key was last used, allowed or not.
ACCESS_COLUMNS = {ApiKey: "last_used_at"}


def _snapshot_fields(model) -> list[str]:
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.name != ACCESS_COLUMNS.get(model)
    ]


@functools.cache
def _snapshot_querysets() -> list[tuple[str, QuerySet]]:
    """Return (table, query of all its rows) for every table but the sessions.

    The queries go through the ORM with no organisation set, which reads every
    organisation's rows, on PostgreSQL with row-level security too.
    """
    querysets = []
    for model in apps.get_models(include_auto_created=True):
        if model is Session:
            continue
        rows = model._base_manager.order_by("pk").values_list(*_snapshot_fields(model))
        querysets.append((model._meta.db_table, rows))
    return querysets


@functools.cache
def _snapshot_statement() -> str:
    """Return one PostgreSQL query of a digest of each table's rows.

    It reads the same rows and columns as ``_snapshot_querysets``. One
    statement hashed on the server replaces a query per table, which made
    each POST case of the matrix take over a second.
    """
    quote = connection.ops.quote_name
    parts = []
    for table, rows in _snapshot_querysets():
        model = rows.model
        columns = ", ".join(
            quote(model._meta.get_field(name).column)
            for name in _snapshot_fields(model)
        )
        parts.append(
            f"SELECT %s, (SELECT md5(string_agg(ROW({columns})::text, E'\\n' "
            f"ORDER BY {quote(model._meta.pk.column)})) FROM {quote(table)})"
        )
    return " UNION ALL ".join(parts)


def _snapshot() -> dict[str, list]:
    """Return every row of every table but the sessions, and the mail outbox size.

    On PostgreSQL each table's rows are a digest of their text.
    """
    state: dict[str, list] = {"mail outbox": [len(mail.outbox)]}
    if connection.vendor == "postgresql":
        tables = [table for table, _ in _snapshot_querysets()]
        # Marked as the ORM's, the statement reads every organisation's rows
        # under row-level security, as the ORM queries below do. Raw SQL
        # with no organisation set would read none.
        with orm_statement(), connection.cursor() as cursor:
            cursor.execute(_snapshot_statement(), tables)
            state.update((table, [digest]) for table, digest in cursor.fetchall())
        return state
    for table, rows in _snapshot_querysets():
        state[table] = list(rows.all())
    return state


def _changed_tables(before: dict[str, list], after: dict[str, list]) -> list[str]:
    return sorted(table for table in before if before[table] != after[table])


def _is_login_page(response: HttpResponse) -> bool:
    path = urlparse(response.get("Location", "")).path
    return path in {reverse("account_login"), reverse("admin:login")}


def _status_problem(response: HttpResponse, expected: int | str) -> str | None:
    status = response.status_code
    if expected == LOGIN:
        passed = status == 302 and _is_login_page(response)
    elif expected == 302:
        passed = status == 302 and not _is_login_page(response)
    else:
        passed = status == expected
    if passed:
        return None
    location = response.get("Location")
    got = f"{status} to {location}" if location else str(status)
    return f"expected {expected}, got {got}"


def _request(case: Case, column: str, objects: MatrixObjects, headers: dict):
    """Sign in the column's persona and return a call that sends the request.

    The login and the payload write to the database, so they happen here,
    before the snapshot that the request is compared against.
    """
    client = Client()
    persona = COLUMNS[column]
    if persona is not None:
        login(client, getattr(objects.personas, persona))
    url = _url(case.route, objects.path_values(case.row.target))
    if case.row.api:
        url += API_QUERY
    if case.row.method == "GET":
        return lambda: client.get(url, headers=headers)
    payload = PAYLOADS.get(case.route.name)
    data = payload(objects) if payload else {}
    return lambda: client.post(url, data, headers=headers)


def _write_problem(case: Case, expected, before: dict, after: dict) -> str | None:
    changed = _changed_tables(before, after)
    if expected in DENIED and changed:
        return f"denied, but changed {', '.join(changed)}"
    name = case.route.name
    writes = name in PAYLOADS or name in WRITES_WITHOUT_PAYLOAD
    if expected not in DENIED and writes and not changed:
        return "allowed, but changed nothing: the request did not reach the action"
    return None


def _check_cell(case: Case, column: str, objects: MatrixObjects, headers: dict):
    """Send one request in a savepoint that is rolled back, and list the problems."""
    expected = case.row.expected[column]
    problems = []
    with transaction.atomic():
        send = _request(case, column, objects, headers)
        before = _snapshot() if case.row.method == "POST" else None
        response = send()
        problems.append(_status_problem(response, expected))
        if before is not None:
            problems.append(_write_problem(case, expected, before, _snapshot()))
        transaction.set_rollback(True)
    key_only = " (API key only)" if headers and column == "anon" else ""
    return [f"{column}{key_only}: {problem}" for problem in problems if problem]


def _header_sets(case: Case, column: str, objects: MatrixObjects) -> list[dict]:
    """Return the headers of each request a cell sends."""
    bearer = {"authorization": f"Bearer {objects.api_key}"}
    if column == "key":
        return [bearer]
    if column == "anon" and not case.row.api:
        return [{}, bearer]
    return [{}]


def _run(case: Case, personas: Personas) -> list[str]:
    objects = MatrixObjects(personas, case.row.target)
    problems = []
    for column in case.row.expected:
        for headers in _header_sets(case, column, objects):
            problems += _check_cell(case, column, objects, headers)
    return problems


@pytest.mark.parametrize("case", _cases(api=False), ids=str)
def test_page_access(personas, case):
    problems = _run(case, personas)
    assert not problems, f"{case}: " + "; ".join(problems)


@pytest.mark.parametrize("case", _cases(api=True), ids=str)
def test_api_access(personas, case):
    problems = _run(case, personas)
    assert not problems, f"{case}: " + "; ".join(problems)


def test_every_route_has_rows():
    """A new URL fails here until rows state who may GET and POST it."""
    missing = []
    for route in ROUTES:
        for method in METHODS:
            rows = [
                row
                for row in ROWS
                if row.method == method
                and (row.name == route.name or _wildcard_covers(row, route))
            ]
            if not route.name and not rows:
                missing.append(f"{method} {route.label} (name the URL first)")
            elif not rows:
                missing.append(f"{method} {route.label}")
    assert not missing, "No row in PAGES or API for: " + ", ".join(missing)


def test_every_row_names_a_route():
    stale = [f"{row.method} {row.name}" for row in ROWS if not _routes_of(row)]
    assert not stale, "Rows for URLs that are not routed: " + ", ".join(stale)


# Column -> the reps whose numbers the API returns to that caller.
VISIBLE_REPS = {
    "key": {"Rita Rep", "Rob Rep", "Remy Rep", "Rex Rep"},
    "admin": {"Rita Rep", "Rob Rep", "Remy Rep", "Rex Rep"},
    "vp": {"Rita Rep", "Rob Rep", "Remy Rep"},
    "mgr": {"Rita Rep", "Rob Rep"},
    "rep": {"Rita Rep"},
}


@pytest.fixture
def deal_per_rep(personas):
    won = personas.stages["Won"]
    for rep in (personas.rep1, personas.rep2, personas.rep3, personas.rep4):
        make_deal(rep, won, "100.00")
    return personas


def _api_get(column: str, personas: Personas, path: str) -> HttpResponse:
    client = Client()
    headers = {}
    if column == "key":
        _api_key, key = api_key_create(organization=personas.org, name="matrix")
        headers["authorization"] = f"Bearer {key}"
    else:
        login(client, getattr(personas, COLUMNS[column]))
    return client.get(path + API_QUERY, headers=headers)


@pytest.mark.parametrize("column", VISIBLE_REPS)
def test_api_metrics_follow_reporting_tree(deal_per_rep, column):
    response = _api_get(column, deal_per_rep, "/api/v1/metrics/reps/")

    assert response.status_code == 200
    assert {row["name"] for row in response.json()} == VISIBLE_REPS[column]


@pytest.mark.parametrize("column", VISIBLE_REPS)
def test_api_deals_follow_reporting_tree(deal_per_rep, column):
    response = _api_get(column, deal_per_rep, "/api/v1/deals/")

    assert response.status_code == 200
    owners = {deal["owner_name"] for deal in response.json()["results"]}
    assert owners == VISIBLE_REPS[column]
