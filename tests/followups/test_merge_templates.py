"""Merge templates of follow-up steps: fields and a few filters, nothing else."""

import pytest

from followups.configuration import template_error
from followups.messages import MergeTemplateError, merge_template, render


def test_fields_and_filters_render():
    text = 'Hi {{ first_name|default:"there" }}, {{ company|upper }} and {{ rep }}'

    result = render(text, {"first_name": "", "company": "Acme", "rep": "Rita"})

    assert result == "Hi there, ACME and Rita"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{% debug %}", 'The tag "{% debug %}" is not allowed.'),
        ('{% include "base.html" %}', 'The tag "{% include %}" is not allowed.'),
        ("{% load static %}{{ first_name }}", 'The tag "{% load %}" is not allowed.'),
        ("{% if deal %}x{% endif %}", 'The tag "{% if %}" is not allowed.'),
        ("{{ frist_name }}", 'Unknown merge field "frist_name".'),
        ("{{ deal.pk }}", 'Unknown merge field "deal.pk".'),
        ("{{ first_name|safe }}", 'The filter "safe" is not allowed.'),
        ("Hi {{ first_name }", 'Unclosed or stray "{{" near "Hi {{ first_name }".'),
        ("Hi }} there", 'Unclosed or stray "}}"'),
        ("Hi {# note", 'Unclosed or stray "{#"'),
    ],
)
def test_unsafe_or_broken_template_rejected(text, message):
    with pytest.raises(MergeTemplateError) as raised:
        merge_template(text)

    assert message in str(raised.value)
    assert message in template_error(text)


def test_render_rejects_template_saved_earlier():
    # A step stored before the check existed never renders server data.
    with pytest.raises(MergeTemplateError):
        render("{% debug %}", {"first_name": "Ann"})
