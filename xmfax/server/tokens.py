"""Access tokens of the REST API: who may do what.

A token is made by the admin command ``xmfax token create --data DIR --name NAME
[--permission send_manage|read]`` (:func:`create`); the store keeps only its SHA-256,
so the token is shown once and a database dump does not reveal it. A request carries
it in the ``XM-Token-Authorization`` header. The store looks the token up by its hash
(``Store.verify_token``), so the comparison never walks the secret character by
character; :func:`check_format` refuses, before any lookup, a header no token can match.

Permissions (``PERMISSIONS``): ``send_manage`` ("send and manage faxes": send, read,
cancel, download), ``read`` (read statuses, event logs and lists only) and ``admin``
(all of it, the CDR export and the admin web page).

Ownership: a fax sent with a token belongs to that token's ``owner`` (``--owner`` of
``xmfax token create``; the token's name when not given). A ``send_manage`` or ``read``
token sees (status, list, broadcast, download, cancel) only the faxes of its owner - of
every token acting for that owner, revoked ones included, so a rotated token keeps its
faxes and a ``read`` token of the same owner can watch them. Another owner's fax, a fax
sent without a token (email to fax, the web page) and every received fax answer 404
``not_found`` exactly as a fax that does not exist. An ``admin`` token sees every fax.
"""
from __future__ import annotations

import re
from typing import Any

HEADER = "XM-Token-Authorization"
ACTIONS = ("send", "read", "cancel", "download", "cdrs")
PERMISSIONS: dict[str, frozenset[str]] = {
    "send_manage": frozenset({"send", "read", "cancel", "download"}),
    "read": frozenset({"read"}),
    "admin": frozenset(ACTIONS),
}
MAX_TOKEN_LENGTH = 200
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.~+/=]+")
_NAME = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")


class TokenError(Exception):
    """Authentication or authorisation refused: ``code`` (unauthorized/forbidden),
    ``status`` (401/403), ``message``."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def check_permission(permission: str) -> str:
    if permission not in PERMISSIONS:
        raise ValueError(f"permission {permission!r}: one of {', '.join(PERMISSIONS)}")
    return permission


def can_administer(permission: str | None) -> bool:
    """May a token of this permission use the admin web page (destinations, every fax)?"""
    return permission == "admin"


def sees_all(token: dict) -> bool:
    """Does this token (a row from :func:`authorize`) see every fax, not only its owner's?"""
    return token.get("permission") == "admin"


def owner_of(token: dict) -> str:
    return token.get("owner") or token.get("name") or ""


def create(store: Any, name: str, permission: str = "send_manage", owner: str = "") -> str:
    """A new token for ``name`` (stored hashed), acting for ``owner`` ("" = its name);
    the token itself is returned once."""
    for what, value in (("token name", name), ("owner", owner or name)):
        if not _NAME.fullmatch(value or ""):
            raise ValueError(f"{what} {value!r}: 1 to 64 letters, digits, '_', '.', '@' or '-'")
    return store.create_token(name, check_permission(permission), owner=owner)


def check_format(header: str | None) -> str:
    """The token in a header value; TokenError(unauthorized) if absent or malformed."""
    if header is None or not header.strip():
        raise TokenError("unauthorized", f"no access token: send it in the {HEADER} header", 401)
    token = header.strip()
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
        raise TokenError("unauthorized", "the access token is not valid", 401)
    return token


def authorize(store: Any, header: str | None, action: str) -> dict:
    """The token row ({id, name, permission, owner}) allowed to do ``action``; TokenError otherwise.
    Synchronous (it queries the store): call it through ``service.db``."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}")
    token = check_format(header)
    row = store.verify_token(token)
    if row is None:
        raise TokenError("unauthorized", "the access token is not valid (unknown or revoked)", 401)
    if action not in PERMISSIONS.get(row.get("permission"), frozenset()):
        raise TokenError("forbidden", f"token {row.get('name')!r} has permission {row.get('permission')!r}, "
                                      f"which does not allow {action}", 403)
    return row
