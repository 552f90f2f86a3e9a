"""The admin web page: fax numbers, the routing table, destinations, users, and the fax
list with each fax's event log, notifications, T.30 ladder and download links.

Server-rendered (Jinja2, autoescaped: a CSID like ``<script>`` is shown, not run), no
JavaScript. Login with an access token of permission ``admin``; the session is an
HMAC-signed cookie (HttpOnly, SameSite=Strict) holding the token's id, an expiry and a
per-session CSRF token that every form carries back. ``web.routes(service)`` gives the
Starlette routes the HTTP server mounts at ``/``.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import tomllib
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .config import ConfigError
from .destinations import check_destination
from .inbound import csid_problem
from .retention import check_days

HERE = Path(__file__).parent
FAX_ID = re.compile(r"[0-9a-f]{16}")          # secrets.token_hex(8), as the store makes them
COOKIE = "xmfax_session"
LOGIN_COOKIE = "xmfax_login"
DEST_TYPES = ("email", "folder", "printer", "webhook")
RULE_KINDS = ("directory", "direct", "custom", "default")
STATUSES = ("queued", "sending", "sent", "failed", "cancelled", "interrupted", "receiving", "received")
#: CSP: nothing inline, nothing from elsewhere (the ladder is an <img> of our own SVG)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class FormError(ValueError):
    """A form field is wrong: shown on the page again, with a 400."""


def _when(t) -> str:
    if t in (None, ""):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(t)))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"], default_for_string=True, default=True))
    env.filters["when"] = _when
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=1, sort_keys=True, default=str)
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    return env


class Sessions:
    """Signed session cookies: base64(json{tid, exp, csrf}) "." HMAC-SHA256."""

    def __init__(self, key: bytes, hours: float):
        self.secret = hmac.new(key, b"xmfax web session v1", hashlib.sha256).digest()
        self.seconds = hours * 3600

    def make(self, token_id, now: float) -> tuple[str, dict]:
        data = {"tid": token_id, "exp": now + self.seconds, "csrf": secrets.token_urlsafe(24)}
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        return f"{body}.{self._sign(body)}", data

    def read(self, cookie: str | None, now: float) -> dict | None:
        if not cookie or "." not in cookie:
            return None
        body, _, sig = cookie.rpartition(".")
        if not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), (int, float)) or data["exp"] < now:
            return None
        return data

    def _sign(self, body: str) -> str:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()


class Web:
    """The pages, bound to one service."""

    def __init__(self, service):
        self.service = service
        self.env = _environment()
        self.sessions = Sessions(service.key, service.web.session_hours)

    # --- plumbing ---------------------------------------------------------------------
    def render(self, request: Request, name: str, code: int = 200, **ctx) -> HTMLResponse:
        session = request.scope.get("xmfax_session") or {}
        ctx.setdefault("error", "")
        html = self.env.get_template(name).render(
            title=self.service.web.title, node=self.service.node, csrf=session.get("csrf", ""),
            user=session.get("name", ""), path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=code, headers=HEADERS)

    async def session(self, request: Request) -> dict | None:
        data = self.sessions.read(request.cookies.get(COOKIE), time.time())
        if data is None:
            return None
        try:                                       # a revoked token ends its sessions
            tok = await self.service.db(self.service.store.get_token, int(data.get("tid")))
        except (TypeError, ValueError):
            return None
        if not tok or tok.get("revoked_at") or not can_administer(tok.get("permission", "")):
            return None
        data["name"] = tok.get("name", "")
        request.scope["xmfax_session"] = data
        return data

    async def form(self, request: Request, session: dict) -> dict:
        """The POSTed form, after the CSRF check (FormError(403) when it fails)."""
        form = await request.form()
        sent = str(form.get("csrf", ""))
        if not sent or not hmac.compare_digest(sent, session["csrf"]):
            raise PermissionError("the form's CSRF token does not match this session")
        return {k: form.getlist(k) if len(form.getlist(k)) > 1 else str(v) for k, v in form.items()}

    def page(self, handler, method: str = "GET"):
        """Wrap a handler: a session is required (else to /login); POSTs are CSRF-checked."""
        async def endpoint(request: Request) -> Response:
            session = await self.session(request)
            if session is None:             # not logged in, or the session ended: to the login form
                back = request.url.path if method == "GET" else "/faxes"
                return RedirectResponse(f"/login?next={quote(back)}", 303, headers=HEADERS)
            try:
                if method == "POST":
                    try:
                        data = await self.form(request, session)
                    except PermissionError as exc:
                        return self.render(request, "message.html", 403, message=str(exc))
                    return await handler(request, data)
                return await handler(request)
            except FormError as exc:
                return self.render(request, "message.html", 400, message=str(exc))
        return endpoint

    # --- login ------------------------------------------------------------------------
    async def login_form(self, request: Request, *, code: int = 200, error: str = "", nxt: str | None = None) -> Response:
        nonce = secrets.token_urlsafe(16)
        resp = self.render(request, "login.html", code, error=error, login_csrf=nonce,
                           next=_safe_next(nxt if nxt is not None else request.query_params.get("next")))
        resp.set_cookie(LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict",
                        secure=self.service.web.secure_cookie)
        return resp

    async def login(self, request: Request) -> Response:
        form = await request.form()
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        sent = str(form.get("login_csrf", ""))
        nxt = _safe_next(str(form.get("next", "/")))
        if not nonce or not hmac.compare_digest(nonce, sent):
            return await self.login_form(request, code=403, nxt=nxt,
                                         error="the login form expired or came from elsewhere: log in again")
        token = str(form.get("token", "")).strip()
        info = await self.service.db(self.service.store.verify_token, token) if token else None
        if not info or not can_administer(info.get("permission", "")):
            why = "this token may not manage the service" if info else "unknown or revoked token"
            return self.render(request, "login.html", 401, next=nxt, login_csrf=nonce, error=why)
        cookie, _ = self.sessions.make(info["id"], time.time())
        resp = RedirectResponse(nxt, 303, headers=HEADERS)
        resp.set_cookie(COOKIE, cookie, max_age=int(self.sessions.seconds), httponly=True, samesite="strict",
                        secure=self.service.web.secure_cookie, path="/")
        resp.delete_cookie(LOGIN_COOKIE)
        return resp

    async def logout(self, request: Request, form: dict) -> Response:
        resp = RedirectResponse("/login", 303, headers=HEADERS)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # --- fax numbers --------------------------------------------------------------------
    async def numbers(self, request: Request) -> Response:
        store = self.service.store
        rows = await self.service.db(store.list_numbers)
        users = await self.service.db(store.list_users)
        return self.render(request, "numbers.html", numbers=rows, users=users)

    async def number_edit(self, request: Request) -> Response:
        number = request.path_params["number"]
        row = await self.service.db(self.service.store.get_number, number)
        if row is None:
            return self.render(request, "message.html", 404, message=f"no fax number {number}")
        users = await self.service.db(self.service.store.list_users)
        return self.render(request, "number_edit.html", n=row, users=users)

    async def number_save(self, request: Request, form: dict) -> Response:
        number = _one(form, "number").strip()
        if not number or len(number) > 32 or not all(c.isdigit() or c in "+*#" for c in number):
            raise FormError(f"number: {number!r} is not a fax number (digits, an optional leading +)")
        retention = _one(form, "retention_days").strip()
        days = None
        if retention:
            try:
                days = check_days(int(retention) if retention.isdigit() else retention, "retention days")
            except ConfigError as exc:
                raise FormError(f"{exc} (or empty for the default)") from None
        csid = _one(form, "csid").strip()
        if csid and (why := csid_problem(csid)):
            raise FormError(why)
        users = _list(form, "users")
        if days == 0:
            others = [n for n in await self.service.db(self.service.store.list_numbers) if n["number"] != number]
            await self._check_routing(numbers=[*others, {"number": number, "retention_days": 0, "users": users}])
        await self.service.db(self.service.store.upsert_number, number, csid=csid, users=users,
                              retention_days=days, label=_one(form, "label").strip())
        return RedirectResponse("/numbers", 303, headers=HEADERS)

    async def number_delete(self, request: Request, form: dict) -> Response:
        number = request.path_params["number"]
        if not await self.service.db(self.service.store.delete_number, number):
            raise FormError(f"no fax number {number}")
        return RedirectResponse("/numbers", 303, headers=HEADERS)

    # --- routing table ------------------------------------------------------------------
    async def rules(self, request: Request) -> Response:
        store = self.service.store
        rows = await self.service.db(store.list_rules)
        dests = await self.service.db(store.list_destinations)
        return self.render(request, "rules.html", rules=rows, destinations=dests, kinds=RULE_KINDS)

    async def rule_edit(self, request: Request) -> Response:
        rules = await self.service.db(self.service.store.list_rules)
        i = _index(request, rules)
        dests = await self.service.db(self.service.store.list_destinations)
        return self.render(request, "rule_edit.html", r=rules[i], index=i, destinations=dests, kinds=RULE_KINDS)

    async def rule_save(self, request: Request, form: dict) -> Response:
        rules = await self.service.db(self.service.store.list_rules)
        rule = _rule_from_form(form)
        at = request.path_params.get("index")
        if at is None:                                   # a new rule: before a trailing default rule
            end = len(rules) - 1 if rules and rules[-1].get("kind") == "default" else len(rules)
            if rule["kind"] == "default":
                end = len(rules)
            rules.insert(end, rule)
        else:
            rules[_index(request, rules)] = rule
        await self._set_rules(rules)
        return RedirectResponse("/rules", 303, headers=HEADERS)

    async def rule_delete(self, request: Request, form: dict) -> Response:
        rules = await self.service.db(self.service.store.list_rules)
        del rules[_index(request, rules)]
        await self._set_rules(rules)
        return RedirectResponse("/rules", 303, headers=HEADERS)

    async def rule_move(self, request: Request, form: dict) -> Response:
        rules = await self.service.db(self.service.store.list_rules)
        i = _index(request, rules)
        j = i - 1 if _one(form, "direction") == "up" else i + 1
        if 0 <= j < len(rules):
            rules[i], rules[j] = rules[j], rules[i]
            await self._set_rules(rules)
        return RedirectResponse("/rules", 303, headers=HEADERS)

    async def _set_rules(self, rules: list[dict]) -> None:
        clean = []
        for pos, r in enumerate(rules):
            clean.append({"position": pos, "name": r.get("name") or f"rule {pos + 1}", "kind": r["kind"],
                          "dnis": r.get("dnis") or "", "ani": r.get("ani") or "",
                          "destinations": list(r.get("destinations") or []),
                          "continue": bool(r.get("continue")), "callable": r.get("callable") or ""})
        await self._check_routing(rules=clean)
        await self.service.db(self.service.store.set_rules, clean)

    async def _check_routing(self, *, rules=None, numbers=None, destinations=None) -> None:
        """Refuse a change after which the routing table could not work (what the inbound
        side would refuse at start: unknown destinations, a custom callable that does not
        import, zero retention without a default destination ...)."""
        from .routing import problems
        from .service import retention_days
        store, db = self.service.store, self.service.db
        rules = rules if rules is not None else await db(store.list_rules)
        numbers = numbers if numbers is not None else await db(store.list_numbers)
        destinations = destinations if destinations is not None else await db(store.list_destinations)
        users = await db(store.list_users)
        zero = retention_days(self.service.config) == 0 or any(n.get("retention_days") == 0 for n in numbers)
        found = await asyncio.to_thread(problems, rules, destinations, zero_retention=zero, users=users)
        if found:
            raise FormError("the routing table would not work: " + "; ".join(found))

    # --- destinations and users -----------------------------------------------------------
    async def destinations(self, request: Request) -> Response:
        rows = await self.service.db(self.service.store.list_destinations)
        return self.render(request, "destinations.html", destinations=rows, types=DEST_TYPES)

    async def destination_save(self, request: Request, form: dict) -> Response:
        name = _one(form, "name").strip()
        kind = _one(form, "type")
        if not name or len(name) > 64:
            raise FormError("name: 1 to 64 characters")
        if kind not in DEST_TYPES:
            raise FormError(f"type: one of {', '.join(DEST_TYPES)}")
        try:
            params = tomllib.loads(_one(form, "params"))
        except tomllib.TOMLDecodeError as exc:
            raise FormError(f"parameters: not TOML (key = \"value\" lines): {exc}") from None
        for bad in ("name", "type"):
            params.pop(bad, None)
        if why := check_destination({"name": name, "type": kind, **params}):
            raise FormError(f"destination {name!r}: {why}")
        await self.service.db(self.service.store.upsert_destination, name, kind, params)
        return RedirectResponse("/destinations", 303, headers=HEADERS)

    async def destination_delete(self, request: Request, form: dict) -> Response:
        name = request.path_params["name"]
        left = [d for d in await self.service.db(self.service.store.list_destinations) if d["name"] != name]
        await self._check_routing(destinations=left)
        if not await self.service.db(self.service.store.delete_destination, name):
            raise FormError(f"no destination {name}")
        return RedirectResponse("/destinations", 303, headers=HEADERS)

    async def users(self, request: Request) -> Response:
        store = self.service.store
        rows = await self.service.db(store.list_users)
        dests = await self.service.db(store.list_destinations)
        return self.render(request, "users.html", users=rows, destinations=dests)

    async def user_save(self, request: Request, form: dict) -> Response:
        name = _one(form, "name").strip()
        if not name or len(name) > 64:
            raise FormError("name: 1 to 64 characters")
        email = _one(form, "email").strip()
        if email and ("@" not in email or any(c.isspace() for c in email)):
            raise FormError(f"email: {email!r} is not an address")
        await self.service.db(self.service.store.upsert_user, name, email=email,
                              destinations=_list(form, "destinations"))
        return RedirectResponse("/users", 303, headers=HEADERS)

    # --- faxes --------------------------------------------------------------------------
    async def faxes(self, request: Request) -> Response:
        q = request.query_params
        status = q.get("status") or None
        direction = q.get("direction") if q.get("direction") in ("in", "out") else None
        try:
            offset = max(0, int(q.get("offset", "0")))
        except ValueError:
            offset = 0
        rows = await self.service.db(self.service.store.list_faxes, direction=direction, status=status,
                                     limit=50, offset=offset)
        return self.render(request, "faxes.html", faxes=rows, status=status or "", direction=direction or "",
                           statuses=STATUSES, offset=offset)

    async def fax(self, request: Request) -> Response:
        store, fax_id = self.service.store, request.path_params["fax_id"]
        row = await self.service.db(store.get_fax, fax_id) if FAX_ID.fullmatch(fax_id) else None
        if row is None:
            return self.render(request, "message.html", 404, message=f"no fax {fax_id}")
        events = await self.service.db(store.events, fax_id)
        notes = await self.service.db(store.notifications, fax_id)
        calls = await self.service.db(store.calls, fax_id=fax_id)
        files = await self.service.db(store.files, fax_id)
        kinds = {f["kind"] for f in files}
        return self.render(request, "fax.html", f=row, events=events, notifications=notes, calls=calls,
                           files=files, has_ladder="record" in kinds,
                           can_download=bool(kinds & {"tiff", "pdf"}))

    async def ladder(self, request: Request) -> Response:
        from ..ladder import render_svg
        record = await self._record(request.path_params["fax_id"])
        if record is None:
            return Response("no fax record", 404, headers=HEADERS)
        svg = render_svg(record)
        return Response(svg, media_type="image/svg+xml", headers={**HEADERS, "Content-Security-Policy": "default-src 'none'"})

    async def _record(self, fax_id: str) -> dict | None:
        """The latest call record (FaxResult JSON) of the fax: outbound keeps one per attempt."""
        store = self.service.store
        if not FAX_ID.fullmatch(fax_id):
            return None
        records = [f for f in await self.service.db(store.files, fax_id) if f["kind"] == "record"]
        if not records:
            return None
        latest = max(records, key=lambda f: (f.get("created_at") or 0, f.get("name") or ""))
        try:
            data = await self.service.db(store.read_file, fax_id, "record", latest.get("name") or "")
        except FileNotFoundError:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    async def download(self, request: Request) -> Response:
        from .http import fax_image
        fax_id, fmt = request.path_params["fax_id"], request.path_params["fmt"]
        if fmt not in ("pdf", "tiff") or not FAX_ID.fullmatch(fax_id):
            return self.render(request, "message.html", 404, message="no such fax image")
        try:
            data = await self.service.db(fax_image, self.service.store, fax_id, fmt)
        except FileNotFoundError:
            return self.render(request, "message.html", 404,
                               message=f"fax {fax_id} has no image (never stored, or purged by retention)")
        media = "application/pdf" if fmt == "pdf" else "image/tiff"
        name = f"fax-{fax_id}.{'pdf' if fmt == 'pdf' else 'tif'}"
        return Response(data, media_type=media, headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})


def can_administer(permission: str) -> bool:
    """Only an `admin` token opens the web page: it edits destinations (webhook URLs the
    service will POST to) and shows every fax, which send_manage/read tokens may not."""
    from . import tokens
    check = getattr(tokens, "can_administer", None)
    return check(permission) if check is not None else permission == "admin"


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/faxes"
    return value


def _one(form: dict, key: str) -> str:
    v = form.get(key, "")
    return v[0] if isinstance(v, list) else str(v)


def _list(form: dict, key: str) -> list[str]:
    """A multi-select, or one comma/space separated text field."""
    v = form.get(key, [])
    items = v if isinstance(v, list) else str(v).replace(",", " ").split()
    return [s.strip() for s in items if s.strip()]


def _index(request: Request, rules: list) -> int:
    try:
        i = int(request.path_params["index"])
    except ValueError:
        raise FormError("no such rule") from None
    if not 0 <= i < len(rules):
        raise FormError("no such rule (the table changed: reload it)")
    return i


def _rule_from_form(form: dict) -> dict:
    kind = _one(form, "kind")
    if kind not in RULE_KINDS:
        raise FormError(f"kind: one of {', '.join(RULE_KINDS)}")
    rule = {"name": _one(form, "name").strip(), "kind": kind, "dnis": _one(form, "dnis").strip(),
            "ani": _one(form, "ani").strip(), "destinations": _list(form, "destinations"),
            "continue": _one(form, "continue") in ("on", "1", "true"), "callable": _one(form, "callable").strip()}
    for key in ("dnis", "ani"):
        if rule[key] and not all(c.isdigit() or c in "+*?#" for c in rule[key]):
            raise FormError(f"{key.upper()}: digits, + and the wildcards * and ?")
    if kind == "custom" and ":" not in rule["callable"]:
        raise FormError("callable: module:function for a custom rule")
    if kind == "direct" and not rule["destinations"]:
        raise FormError("a direct rule names at least one destination")
    return rule


def routes(service) -> list:
    """The admin pages as Starlette routes (mounted at "/"); [] when [web].enabled is false."""
    if not service.web.enabled:
        return []
    w = Web(service)
    page = w.page
    return [
        Route("/", lambda r: RedirectResponse("/faxes", 303)),
        Route("/login", w.login_form, methods=["GET"]),
        Route("/login", w.login, methods=["POST"]),
        Route("/logout", page(w.logout, "POST"), methods=["POST"]),
        Route("/numbers", page(w.numbers), methods=["GET"]),
        Route("/numbers", page(w.number_save, "POST"), methods=["POST"]),
        Route("/numbers/{number}/edit", page(w.number_edit), methods=["GET"]),
        Route("/numbers/{number}/delete", page(w.number_delete, "POST"), methods=["POST"]),
        Route("/rules", page(w.rules), methods=["GET"]),
        Route("/rules", page(w.rule_save, "POST"), methods=["POST"]),
        Route("/rules/{index:int}/edit", page(w.rule_edit), methods=["GET"]),
        Route("/rules/{index:int}", page(w.rule_save, "POST"), methods=["POST"]),
        Route("/rules/{index:int}/delete", page(w.rule_delete, "POST"), methods=["POST"]),
        Route("/rules/{index:int}/move", page(w.rule_move, "POST"), methods=["POST"]),
        Route("/destinations", page(w.destinations), methods=["GET"]),
        Route("/destinations", page(w.destination_save, "POST"), methods=["POST"]),
        Route("/destinations/{name}/delete", page(w.destination_delete, "POST"), methods=["POST"]),
        Route("/users", page(w.users), methods=["GET"]),
        Route("/users", page(w.user_save, "POST"), methods=["POST"]),
        Route("/faxes", page(w.faxes), methods=["GET"]),
        Route("/faxes/{fax_id}", page(w.fax), methods=["GET"]),
        Route("/faxes/{fax_id}/ladder.svg", page(w.ladder), methods=["GET"]),
        Route("/faxes/{fax_id}/download/{fmt}", page(w.download), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
