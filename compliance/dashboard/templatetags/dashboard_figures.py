"""`{{ figure|figure }}`: a dashboard figure as a link to the admin list behind it."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def figure(value) -> str:
    """A `panels.Figure` as `<a href=LIST title=...>TEXT</a>` (plain text without a list)."""
    if not value.href:
        return format_html('<span title="{}">{}</span>', value.title, value.text)
    return format_html('<a href="{}" title="{}">{}</a>', value.href, value.title, value.text)
