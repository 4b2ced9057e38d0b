from django import template

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
