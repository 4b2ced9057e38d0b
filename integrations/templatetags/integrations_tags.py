from django import template

from integrations import writeback
from integrations.selectors import data_as_of

register = template.Library()


@register.inclusion_tag("integrations/_data_as_of.html", takes_context=True)
def crm_data_as_of(context, show_changed: bool = False) -> dict:
    """Render "CRM data as of <last sync>". One query, none while cached.

    With ``show_changed``, also the count of deals changed since the latest
    commission calculation. Renders nothing for an organisation without a
    CRM connection.
    """
    organization = context.get("organization")
    value = None
    if organization is not None:
        value = data_as_of(organization, with_changed=show_changed)
    return {"as_of": value, "show_changed": show_changed}


@register.simple_tag
def writebacks_retryable(entries) -> set[str]:
    """Return the write-back ids of failed write-back entries that are still failed.

    One query for the page, and none when it shows no failed write-back, so
    the audit log offers a retry only until one succeeds.
    """
    ids = [
        entry.new.get("writeback_id")
        for entry in entries
        if entry.action == writeback.FAILED
        and isinstance(entry.new, dict)
        and entry.new.get("writeback_id")
    ]
    return writeback.writebacks_failed(ids)
