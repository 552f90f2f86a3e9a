"""The service's configuration: one TOML file (``--config FILE``) plus the command line.

Every key is optional. The top level holds the service's own keys; each component's
table (``[outbound]``, ``[smtp]`` ...) is kept raw here and parsed by that component's
``from_dict`` into its own dataclass, so a component owns the meaning of its keys.
``[[numbers]]``, ``[[users]]``, ``[[destinations]]`` and ``[[rules]]`` seed the directory
(the web page edits it afterwards; what the file names wins at each start).
"""
from __future__ import annotations

import hashlib
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "xmfax-data"
DEFAULT_HTTP = "127.0.0.1:8080"

#: the tables components parse; any other top-level table is an error
SECTIONS = ("outbound", "inbound", "notify", "smtp", "mail2fax", "retention", "limits", "web")
#: the [[arrays]] that seed the directory
ARRAYS = ("numbers", "users", "destinations", "rules")
#: the service's own top-level keys (strings)
SCALARS = ("data_dir", "http", "database", "node", "encryption_key", "key_file", "public_url",
           "tls_cert", "tls_key")


class ConfigError(ValueError):
    """A configuration value is unknown or wrong: the message names the key (and file)."""


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    http: str = DEFAULT_HTTP
    database: str = ""
    node: str = ""
    encryption_key: str = ""
    key_file: str = ""
    public_url: str = ""
    tls_cert: str = ""              # HTTPS: the certificate chain (PEM) ...
    tls_key: str = ""               # ... and its private key; both or neither
    sections: dict[str, dict] = field(default_factory=dict)
    numbers: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    destinations: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    source: str = ""                # the file read ("" = none)

    def section(self, name: str) -> dict:
        """The raw table ``[name]`` ({} when absent)."""
        return self.sections.get(name, {})

    @property
    def db_kind(self) -> str:
        return "postgresql" if self.database.startswith(("postgresql:", "postgres:")) else "sqlite"

    @property
    def db_url(self) -> str:
        """What Store.open takes: the PostgreSQL URL or the SQLite file's path."""
        return self.database or str(self.data_dir / "xmfax.db")

    @property
    def key_path(self) -> Path:
        return Path(self.key_file) if self.key_file else self.data_dir / "key"

    def http_host_port(self) -> tuple[str, int]:
        return parse_host_port(self.http, "http")

    @property
    def http_scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def parse_host_port(text: str, key: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 as "[::1]:PORT") -> (host, port); port 0 = any free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: {text!r} is not HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def default_node(data_dir: Path) -> str:
    """The node name used when none is given: host name and a short hash of the data
    folder, so two nodes on one host differ and one node keeps its name across restarts."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:6]
    return f"{socket.gethostname()}-{digest}"


def from_dict(raw: dict[str, Any], *, source: str = "") -> ServerConfig:
    """A ServerConfig from a parsed TOML document (checked: unknown keys are errors)."""
    where = f" in {source}" if source else ""
    cfg = ServerConfig(source=source)
    for key, value in raw.items():
        if key in SCALARS:
            if not isinstance(value, str):
                raise ConfigError(f"{key}: must be a string{where}")
            setattr(cfg, key, Path(value) if key == "data_dir" else value)
        elif key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}]: must be a table{where}")
            cfg.sections[key] = dict(value)
        elif key in ARRAYS:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"[[{key}]]: must be an array of tables{where}")
            setattr(cfg, key, [dict(v) for v in value])
        else:
            known = ", ".join((*SCALARS, *SECTIONS, *ARRAYS))
            raise ConfigError(f"unknown key {key!r}{where} (known: {known})")
    _check_directory(cfg, where)
    _check_values(cfg, where)
    return cfg


def _check_directory(cfg: ServerConfig, where: str) -> None:
    """The seed arrays carry the keys the store needs."""
    for i, n in enumerate(cfg.numbers):
        _keys(n, f"[[numbers]] #{i + 1}", {"number"}, {"number", "csid", "users", "retention_days", "label"}, where)
    for i, u in enumerate(cfg.users):
        _keys(u, f"[[users]] #{i + 1}", {"name"}, {"name", "email", "destinations"}, where)
    for i, d in enumerate(cfg.destinations):
        _keys(d, f"[[destinations]] #{i + 1}", {"name", "type"}, None, where)
    for i, r in enumerate(cfg.rules):
        _keys(r, f"[[rules]] #{i + 1}", {"kind"},
              {"name", "kind", "dnis", "ani", "destinations", "continue", "callable", "position"}, where)
        if r["kind"] not in ("directory", "direct", "custom", "default"):
            raise ConfigError(f"[[rules]] #{i + 1} kind: {r['kind']!r} is not directory, direct, custom "
                              f"or default{where}")


def _check_values(cfg: ServerConfig, where: str) -> None:
    """What the line and the notifiers would refuse later, refused now: a CSID T.30 cannot
    carry (Table 3/T.30: digits, '+' and space, 20 at most), a destination that cannot work."""
    from .destinations import check_destination
    from .inbound import csid_problem
    from .retention import check_days
    for i, n in enumerate(cfg.numbers):
        if n.get("csid") and (why := csid_problem(str(n["csid"]))):
            raise ConfigError(f"[[numbers]] #{i + 1} csid: {why}{where}")
        if n.get("retention_days") is not None:
            try:
                check_days(n["retention_days"], f"[[numbers]] #{i + 1} retention_days")
            except ConfigError as exc:
                raise ConfigError(f"{exc}{where}") from None
    for i, d in enumerate(cfg.destinations):
        if why := check_destination(d):
            raise ConfigError(f"[[destinations]] #{i + 1} ({d.get('name')}): {why}{where}")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ConfigError(f"tls_cert and tls_key: give both (HTTPS) or neither (HTTP){where}")
    for key in ("tls_cert", "tls_key"):
        if getattr(cfg, key) and not Path(getattr(cfg, key)).is_file():
            raise ConfigError(f"{key}: {getattr(cfg, key)} is not a readable file{where}")


def _keys(d: dict, name: str, required: set[str], allowed: set[str] | None, where: str) -> None:
    for k in sorted(required - d.keys()):
        raise ConfigError(f"{name} {k}: missing{where}")
    if allowed is not None:
        for k in sorted(d.keys() - allowed):
            raise ConfigError(f"{name} {k}: unknown key{where} (known: {', '.join(sorted(allowed))})")


def load(path: str | Path | None = None, *, data: str | Path | None = None, http: str | None = None,
         database: str | None = None, node: str | None = None, lines: list[str] = (),
         listen: list[str] = ()) -> ServerConfig:
    """Read FILE (when given) and apply the command line over it: --data, --http,
    --database, --node replace; --line adds to [outbound].lines, --listen to [inbound].listen."""
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} cannot be read: {exc}") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        cfg = from_dict(raw, source=str(p))
    else:
        cfg = ServerConfig()
    if data is not None:
        cfg.data_dir = Path(data)
    if http is not None:
        cfg.http = http
    if database is not None:
        cfg.database = database
    if node is not None:
        cfg.node = node
    for key, extra in (("outbound", ("lines", lines)), ("inbound", ("listen", listen))):
        name, values = extra
        if values:
            table = cfg.sections.setdefault(key, {})
            have = table.get(name, [])
            if isinstance(have, str):
                have = [have]
            table[name] = [*have, *values]
    cfg.http_host_port()                                  # fail early on a bad --http
    if "://" in cfg.database and not cfg.database.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ConfigError(f"database: {cfg.database!r} is neither postgresql://... nor a SQLite file "
                          "(leave it empty for SQLite in the data folder)")
    if not cfg.node:
        cfg.node = default_node(cfg.data_dir)
    return cfg


# [web] (H7): the admin page
@dataclass
class WebConfig:
    enabled: bool = True            # serve the admin pages at /
    session_hours: float = 12.0     # a login lasts this long
    title: str = "xmfax"            # shown in the page header
    secure_cookie: bool = False     # mark the session cookie Secure (behind HTTPS)

    @classmethod
    def from_dict(cls, d: dict) -> "WebConfig":
        known = {f.name: f for f in fields(cls)}
        out = cls()
        for key, value in d.items():
            if key not in known:
                raise ConfigError(f"[web] {key}: unknown key (known: {', '.join(known)})")
            want = type(getattr(out, key))
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want):
                raise ConfigError(f"[web] {key}: must be {want.__name__}")
            setattr(out, key, value)
        if out.session_hours <= 0:
            raise ConfigError("[web] session_hours: must be > 0")
        return out
