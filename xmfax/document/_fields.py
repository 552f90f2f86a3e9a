"""Filling ``{field}`` templates without ever failing on the user's template text."""
from __future__ import annotations

import string


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, fields: dict) -> str:
    """``template`` with each ``{name}`` replaced from ``fields``.

    Unknown names are left as written, and text that is not a valid format string
    (a lone brace) is returned unchanged rather than raising.
    """
    values = _Missing({k: "" if v is None else v for k, v in fields.items()})
    try:
        return string.Formatter().vformat(template, (), values)
    except (ValueError, IndexError, AttributeError, KeyError, TypeError):
        return template
