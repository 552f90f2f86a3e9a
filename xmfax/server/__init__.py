"""``xmfax serve``: a fax service on top of the send/receive API (issue #14).

REST sending with XML control files, fax numbers with their CSIDs, an incoming routing
table, notification destinations (mail, folder, printer, webhook), email to fax,
retention, and event logs - in SQLite (one node) or PostgreSQL (several nodes).
See docs/server.md. The pieces: config (the TOML file), service (the life cycle), store,
http + xmlcontrol + tokens (REST), submit + outbound (sending), inbound + routing
(receiving), notify + destinations, mail2fax + mailer, retention, web (the admin page).
"""
from __future__ import annotations

from .config import ConfigError, ServerConfig

__all__ = ["ConfigError", "ServerConfig"]
