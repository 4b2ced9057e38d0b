"""The emails of follow-up steps: merge fields, unsubscribe link and Message-ID."""

from __future__ import annotations

from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMessage
from django.template import Context, Template
from django.urls import reverse

from followups.models import Enrollment, Step
from followups.services import recipient_email, unsubscribe_token


def merge_fields(enrollment: Enrollment) -> dict[str, str]:
    """Return the values of the merge fields first_name, company, deal and rep."""
    deal = enrollment.deal
    lead = enrollment.lead
    contact = enrollment.contact
    if contact is not None:
        first_name = contact.first_name
    else:
        first_name = lead.first_name if lead else ""
    if deal is not None and deal.account_id:
        company = deal.account.name
    elif contact is not None and contact.account_id:
        company = contact.account.name
    else:
        company = lead.company if lead else ""
    return {
        "first_name": first_name,
        "company": company,
        "deal": deal.name if deal else "",
        "rep": enrollment.member.display_name,
    }


def render(template_text: str, fields: dict[str, str]) -> str:
    """Render a step's subject or body as a plain-text Django template (no escaping)."""
    return Template(template_text).render(Context(fields, autoescape=False))


def unsubscribe_url(organization_id: int, email: str) -> str:
    path = reverse(
        "followups-public:unsubscribe",
        kwargs={"token": unsubscribe_token(organization_id, email)},
    )
    return settings.ATTAIN_BASE_URL.rstrip("/") + path


def member_address(member) -> str:
    """Return a member's email: their own, else their login's, else ""."""
    if member.email:
        return member.email
    return member.user.email if member.user_id else ""


def _message_id() -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(">").strip() or None
    return make_msgid(domain=domain)


def step_email(enrollment: Enrollment, step: Step) -> EmailMessage:
    """Build the email of an email step, to the enrollment's contact, sent as the rep.

    The message has a fresh Message-ID header, an unsubscribe link in the
    body, and List-Unsubscribe headers for one-click unsubscribe (RFC 8058).
    """
    fields = merge_fields(enrollment)
    address = recipient_email(enrollment)
    link = unsubscribe_url(enrollment.organization_id, address)
    body = render(step.body, fields).rstrip()
    body += f"\n\n--\nTo stop these emails, unsubscribe: {link}\n"
    rep_address = member_address(enrollment.member)
    reply_to = [rep_address] if rep_address else None
    return EmailMessage(
        subject=render(step.subject, fields).strip(),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        reply_to=reply_to,
        headers={
            "Message-ID": _message_id(),
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def manager_email(enrollment: Enrollment, step: Step) -> EmailMessage | None:
    """Build the notice to the rep's manager, or None if the manager has no email."""
    manager = enrollment.member.reports_to
    address = member_address(manager) if manager else ""
    if not address:
        return None
    fields = merge_fields(enrollment)
    subject = render(step.subject, fields).strip() or (
        f"Follow-up: {fields['rep']} on {fields['deal'] or fields['company']}"
    )
    return EmailMessage(
        subject=subject,
        body=render(step.body, fields).rstrip() + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"Message-ID": _message_id()},
    )
