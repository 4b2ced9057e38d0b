"""The emails of follow-up steps: merge fields, unsubscribe link and Message-ID."""

from __future__ import annotations

from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMessage
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Template, TextNode, Variable, VariableNode
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


MERGE_FIELDS = ("first_name", "company", "deal", "rep")
MERGE_FILTERS = ("default", "upper", "lower", "title", "capfirst")
# An engine with no tag libraries to load and no template folders, so a
# step cannot {% load %} or {% include %} anything. The node check below
# rejects the built-in tags as well.
MERGE_ENGINE = Engine(dirs=[], app_dirs=False, libraries={})
BRACES = ("{{", "}}", "{%", "%}", "{#", "#}")


class MergeTemplateError(TemplateSyntaxError):
    """A step's subject or body that is not a valid merge template."""


def merge_template(text: str) -> Template:
    """Compile a step's subject or body, allowing only merge fields and a few filters.

    A merge template is text with ``{{ first_name }}``-style fields, each
    optionally with the filters default, upper, lower, title or capfirst.
    Tags, unknown fields and stray braces raise ``MergeTemplateError``, so
    a step can never render other data or templates of the server.
    """
    try:
        template = MERGE_ENGINE.from_string(text)
    except TemplateSyntaxError as error:
        if "tag library" in str(error):
            # {% load %} of any library: the engine has none to offer.
            raise MergeTemplateError(_tag_not_allowed("load")) from None
        raise MergeTemplateError(str(error)) from None
    for node in template.nodelist:
        if isinstance(node, TextNode):
            stray = next((brace for brace in BRACES if brace in node.s), None)
            if stray:
                raise MergeTemplateError(
                    f'Unclosed or stray "{stray}" near "{node.s.strip()[:40]}". '
                    "Write merge fields as {{ first_name }}."
                )
        elif isinstance(node, VariableNode):
            _check_field(node)
        else:
            tag = node.token.contents.split()[0] if node.token else "tag"
            raise MergeTemplateError(_tag_not_allowed(tag))
    return template


def _tag_not_allowed(tag: str) -> str:
    return (
        f'The tag "{{% {tag} %}}" is not allowed. Use merge fields such as '
        '{{ first_name }}, with |default:"..." for empty values.'
    )


def _check_field(node: VariableNode) -> None:
    expression = node.filter_expression
    variable = expression.var
    name = variable.var if isinstance(variable, Variable) else str(variable)
    if not isinstance(variable, Variable) or name not in MERGE_FIELDS:
        raise MergeTemplateError(
            f'Unknown merge field "{name}". Use one of: {", ".join(MERGE_FIELDS)}.'
        )
    for function, _arguments in expression.filters:
        filter_name = getattr(function, "_filter_name", function.__name__)
        if filter_name not in MERGE_FILTERS:
            raise MergeTemplateError(
                f'The filter "{filter_name}" is not allowed. Use one of: '
                f"{', '.join(MERGE_FILTERS)}."
            )


def render(template_text: str, fields: dict[str, str]) -> str:
    """Render a step's subject or body as a plain-text merge template (no escaping)."""
    return merge_template(template_text).render(Context(fields, autoescape=False))


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
    """Build the email of an email step, to the enrolment's contact, sent as the rep.

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
