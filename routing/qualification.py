"""Qualification: the step between lead intake and routing.

Intake calls ``lead_qualify`` on every received lead before it stores the
lead. The step normalises the fields, gives the lead the predicted score
of the organisation's active model (routing/model_services.py), scores it
with the active scoring rules, and checks it against the
disqualification signals: an invalid or disposable email address, a
competitor's domain, and the admins' disqualify rules. A lead from an
existing customer's domain (an account with a won deal) is not
disqualified: it is marked for that account's owner.

The work is a fixed handful of queries whatever the number of rules: the
active model's version in one, the rules in one, the settings in one, the
customer account in one. The model itself is read once per process and
version.

Inside the intake transaction, ``duplicate_find_locked`` then looks for an
open lead with the same email or phone within the organisation's window.
On PostgreSQL it first takes a transaction-level advisory lock on each key,
so two identical submissions racing find each other instead of creating
two leads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from activity.models import Account, Contact, Deal, Lead
from routing.config_cache import cached
from routing.engine.accounts import accounts_on_domain
from routing.engine.conditions import condition_matches, describe, lead_value
from routing.model_services import Prediction, lead_predict
from routing.models import (
    LeadQualification,
    LeadSubmission,
    QualificationSettings,
    ScoringRule,
)
from routing.normalization import normalize_lead
from spm.models import Organization

# Providers of throwaway addresses. A lead from one gives no way back to
# the person, so it is disqualified.
DISPOSABLE_EMAIL_DOMAINS = frozenset(
    {
        "10minutemail.com",
        "discard.email",
        "dispostable.com",
        "fakeinbox.com",
        "getnada.com",
        "guerrillamail.com",
        "guerrillamail.net",
        "maildrop.cc",
        "mailinator.com",
        "mailnesia.com",
        "mintemail.com",
        "mohmal.com",
        "sharklasers.com",
        "spamgourmet.com",
        "temp-mail.org",
        "tempmail.com",
        "tempmailo.com",
        "throwawaymail.com",
        "trashmail.com",
        "yopmail.com",
    }
)
NOT_PHONE_DIGIT = re.compile(r"\D")
Status = LeadQualification.Status


@dataclass(frozen=True)
class QualifiedLead:
    fields: dict
    route: bool = True
    reason: str = ""
    score: int = 0
    fit: int = 0
    engagement: int = 0
    parts: list[dict] = field(default_factory=list)
    status: str = Status.NEW
    customer_account: Account | None = None
    known_contact: Contact | None = None
    intake: dict = field(default_factory=dict)
    prediction: Prediction | None = None
    # The settings the lead was qualified with, so that the duplicate check
    # of the same intake does not read them again.
    settings: QualificationSettings | None = None
    # The ids of the accounts on the lead's domain, for routing's
    # account-owner rule, or None when they were not read.
    domain_account_ids: list[int] | None = None


class _Fields:
    """Attribute access to lead fields, as the condition matcher expects."""

    def __init__(self, fields: dict) -> None:
        self.__dict__.update(fields)
        self.custom = fields.get("custom") or {}

    def __getattr__(self, name: str):
        return None


def phone_key(phone: str) -> str:
    """Return the digits of ``phone``, with a leading "+" kept."""
    text = (phone or "").strip()
    digits = NOT_PHONE_DIGIT.sub("", text)
    if not digits:
        return ""
    return f"+{digits}" if text.startswith("+") else digits


def settings_for(organization: Organization) -> QualificationSettings:
    """Return the organisation's settings, or unsaved defaults.

    Inside a configuration scope the object is shared, so callers must not
    change it.
    """

    def load() -> QualificationSettings:
        found = QualificationSettings.objects.filter(organization=organization).first()
        return found or QualificationSettings(organization=organization)

    return cached("qualification_settings", load)


def status_for(score: int, settings: QualificationSettings) -> str:
    """Return the status of a score: at a threshold counts as reaching it."""
    if score >= settings.sql_threshold:
        return Status.SQL
    if score >= settings.mql_threshold:
        return Status.MQL
    return Status.NEW


def score_fields(fields: dict, rules: list[ScoringRule]) -> tuple[dict, str]:
    """Return the score with its parts, and the first disqualify rule met.

    Parts are in rule order: ``{"rule", "field", "value", "points"}``, where
    ``value`` is the lead's value of the field.
    """
    lead = _Fields(fields)
    totals = {ScoringRule.Kind.FIT: 0, ScoringRule.Kind.ENGAGEMENT: 0}
    parts, disqualified_by = [], ""
    for rule in rules:
        if not condition_matches(rule.condition, lead):
            continue
        if rule.kind == ScoringRule.Kind.DISQUALIFY:
            disqualified_by = (
                disqualified_by or f"{rule.name} ({describe(rule.condition)})"
            )
            continue
        totals[rule.kind] += rule.points
        value = lead_value(lead, rule.field)
        parts.append(
            {
                "rule": rule.name,
                "field": rule.field,
                "value": str(value),
                "points": rule.points,
            }
        )
    fit, engagement = totals[ScoringRule.Kind.FIT], totals[ScoringRule.Kind.ENGAGEMENT]
    return {
        "score": fit + engagement,
        "fit": fit,
        "engagement": engagement,
        "parts": parts,
    }, disqualified_by


def describe_score(score: int, parts: list[dict]) -> str:
    """Return the score as a sum of its parts, such as "55 = 30 A + 25 B"."""
    if not parts:
        return f"{score} (no rule matched)"
    first = parts[0]
    terms = [f"{first['points']} {first['rule']}"]
    for part in parts[1:]:
        sign = "-" if part["points"] < 0 else "+"
        terms.append(f"{sign} {abs(part['points'])} {part['rule']}")
    return f"{score} = " + " ".join(terms)


def _email_reason(email: str) -> str:
    if not email:
        return ""
    domain = email.rsplit("@", 1)[-1]
    if domain in DISPOSABLE_EMAIL_DOMAINS:
        return f"Disposable email address ({domain})"
    return ""


def _competitor_reason(fields: dict, competitors: set[str]) -> str:
    email = fields.get("email") or ""
    domains = {fields.get("domain") or "", email.rsplit("@", 1)[-1] if email else ""}
    for domain in sorted(domains - {""}):
        if domain in competitors:
            return f"Competitor domain ({domain})"
    return ""


def known_contact(email: str) -> Contact | None:
    """Return the oldest contact with ``email`` whose owner, or account owner, is set.

    Contacts match at any age, because a contact is a person already in the
    CRM. Open leads, in contrast, match only within the duplicate window.
    """
    if not email:
        return None
    # Most leads are new people. A narrow read through the email index
    # settles those before the query with its joins runs.
    if not Contact.objects.filter(email__iexact=email).exists():
        return None
    return (
        Contact.objects.filter(email__iexact=email)
        .filter(Q(owner__isnull=False) | Q(account__owner__isnull=False))
        .select_related("owner", "account__owner")
        .order_by("id")
        .first()
    )


def customer_account(
    domain: str, accounts: list[Account] | None = None
) -> Account | None:
    """Return the account on ``domain`` with a won deal, or None.

    Among several, the oldest one with an owner wins, else the oldest.
    ``accounts`` are the accounts on the domain when the caller has read them.
    """
    if not domain:
        return None
    if accounts is None:
        accounts = accounts_on_domain(domain)
    # Most leads match no account, so the won-deal check runs only for the
    # accounts found.
    if not accounts:
        return None
    won = set(
        Deal.objects.filter(
            account_id__in=[row.pk for row in accounts], stage__is_won=True
        ).values_list("account_id", flat=True)
    )
    matches = [row for row in accounts if row.pk in won]
    return next(
        (row for row in matches if row.owner_id), matches[0] if matches else None
    )


def lead_qualify(*, organization: Organization, fields: dict) -> QualifiedLead:
    """Return the lead's normalised fields, its score and whether to route it.

    Raises ``routing.normalization.LeadInputError`` naming each invalid field.
    """
    normalized = normalize_lead(fields)
    intake = {
        key: (
            str(value)
            if value is not None and not isinstance(value, dict | str | int)
            else value
        )
        for key, value in normalized.items()
    }
    # Before the rules, so that a rule can test the predicted score.
    prediction = lead_predict(organization=organization, intake=intake)
    settings = settings_for(organization)
    rules = cached(
        "scoring_rules",
        lambda: list(ScoringRule.objects.filter(is_active=True).order_by("id")),
    )
    predicted = {"predicted_score": prediction.score if prediction else None}
    scored, rule_reason = score_fields({**normalized, **predicted}, rules)
    competitors = {
        domain.strip().lower() for domain in settings.competitor_domains or []
    }
    reason = (
        _email_reason(normalized.get("email") or "")
        or _competitor_reason(normalized, competitors)
        or (f"Disqualify rule: {rule_reason}" if rule_reason else "")
    )
    domain = normalized.get("domain") or ""
    domain_accounts = accounts_on_domain(domain) if domain and not reason else None
    account = None if reason else customer_account(domain, domain_accounts)
    contact = None if reason else known_contact(normalized.get("email") or "")
    status = Status.DISQUALIFIED if reason else status_for(scored["score"], settings)
    return QualifiedLead(
        fields=normalized,
        route=not reason,
        reason=reason,
        status=status,
        customer_account=account,
        known_contact=contact,
        intake=intake,
        prediction=prediction,
        settings=settings,
        domain_account_ids=(
            [row.pk for row in domain_accounts] if domain_accounts is not None else None
        ),
        **scored,
    )


def qualification_store(*, lead: Lead, qualified: QualifiedLead) -> LeadQualification:
    """Store the qualification of a lead just created by intake."""
    if qualified.status == Status.DISQUALIFIED:
        lead.status = Lead.Status.DISQUALIFIED
        lead.save(update_fields=["status"])
    prediction = qualified.prediction
    return LeadQualification.objects.create(
        lead=lead,
        score=qualified.score,
        fit=qualified.fit,
        engagement=qualified.engagement,
        parts=qualified.parts,
        status=qualified.status,
        reason=qualified.reason[:255],
        customer_account=qualified.customer_account,
        known_contact=qualified.known_contact,
        email_key=(lead.email or "").lower(),
        phone_key=phone_key(lead.phone),
        intake=qualified.intake,
        model_version=prediction.version if prediction else None,
        predicted_score=prediction.score if prediction else None,
    )


# Duplicates -------------------------------------------------------------------


def _advisory_lock(organization: Organization, keys: list[str]) -> None:
    """Hold a lock per key until the transaction ends (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in sorted(keys):
            text = f"lead-duplicate:{organization.pk}:{key}"
            number = int.from_bytes(
                hashlib.sha256(text.encode()).digest()[:8], "big", signed=True
            )
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


@dataclass(frozen=True)
class Duplicate:
    lead: Lead
    matched_by: str  # "email" or "phone"


def duplicate_find_locked(
    *,
    organization: Organization,
    fields: dict,
    now: dt.datetime | None = None,
    settings: QualificationSettings | None = None,
) -> Duplicate | None:
    """Return the open lead that ``fields`` duplicates, or None.

    Call inside the transaction that creates the lead. An open lead is one
    neither converted nor disqualified, received (or created) within the
    organisation's window: at exactly the window's length it still counts.
    """
    email = (fields.get("email") or "").lower()
    phone = phone_key(fields.get("phone") or "")
    keys = [f"e:{email}"] * bool(email) + [f"p:{phone}"] * bool(phone)
    if not keys:
        return None
    _advisory_lock(organization, keys)
    settings = settings or settings_for(organization)
    since = (now or timezone.now()) - dt.timedelta(days=settings.duplicate_window_days)
    open_leads = Lead.objects.exclude(
        status__in=[Lead.Status.CONVERTED, Lead.Status.DISQUALIFIED]
    ).filter(
        Q(received_at__gte=since) | Q(received_at__isnull=True, created_at__gte=since)
    )
    match = Q()
    if email:
        match |= Q(email_lower=email)
    if phone:
        match |= Q(qualification__phone_key=phone)
    found = (
        open_leads.annotate(email_lower=Lower("email"))
        .filter(match)
        .order_by("id")
        .first()
    )
    if found is None:
        return None
    by = "email" if email and (found.email or "").lower() == email else "phone"
    return Duplicate(found, by)


def submission_record(*, duplicate: Duplicate, fields: dict) -> LeadSubmission:
    """Record a submission merged into an existing lead."""
    stored = {
        key: (value if isinstance(value, dict | str | int | None) else str(value))
        for key, value in fields.items()
    }
    return LeadSubmission.objects.create(
        lead=duplicate.lead,
        fields=stored,
        source=str(fields.get("source") or "")[:120],
        matched_by=duplicate.matched_by,
    )


def qualification_context(lead: Lead) -> dict:
    """Return the lead page's qualification, score text and merged submissions."""
    qualification = (
        LeadQualification.objects.select_related("customer_account")
        .filter(lead=lead)
        .first()
    )
    return {
        "qualification": qualification,
        "score_text": (
            describe_score(qualification.score, qualification.parts)
            if qualification
            else ""
        ),
        "submissions": list(LeadSubmission.objects.filter(lead=lead)),
    }
