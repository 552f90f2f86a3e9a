"""The service: opens the store, seeds the directory from the config, recovers what a
crash left half done, and runs the components in one asyncio loop.

Start order (stop is the reverse): Notifier, Retention, Outbound, Inbound, MailGateway,
HttpServer - so nothing is accepted (HTTP, mail, calls) before the workers that carry it
on are running, and on the way down the front doors close first.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import fcntl
import importlib
import logging
import secrets
from pathlib import Path
from typing import Any

from .config import ConfigError, ServerConfig, WebConfig

log = logging.getLogger("xmfax.server")

#: (module in xmfax.server, class): the components, in start order
COMPONENTS: list[tuple[str, str]] = [
    ("notify", "Notifier"),
    ("retention", "Retention"),
    ("outbound", "Outbound"),
    ("inbound", "Inbound"),
    ("mail2fax", "MailGateway"),
    ("http", "HttpServer"),
]

DB_THREADS = 16          # worker threads for store calls (each holds its own connection)
STOP_DB_WAIT = 15.0      # at stop, wait this long for store calls still running
STOP_COMPONENT_WAIT = 60.0   # a component's stop() that takes longer is given up (the node must exit)

WAKE_NAMES = ("outbound", "notify", "retention", "inbound", "mail2fax")

# exit statuses of `xmfax serve` (as the other subcommands: 1 failed, 2 usage, 3 bad place)
EXIT_FAILED, EXIT_USAGE, EXIT_DATA_DIR = 1, 2, 3


class StartError(Exception):
    """The service cannot start: one line for the user, and the exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def redact_url(url: str) -> str:
    """A database URL fit for a message: the password replaced by ***."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    cred, _, host = rest.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in cred else ''}@{host}"


def prepare_data_dir(path: Path) -> None:
    """Create the data folder (0700) and check we can write in it; StartError(exit 3) if not."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartError(f"data folder {path} cannot be written: {exc.strerror or exc}", EXIT_DATA_DIR) from None


def load_key(config: ServerConfig) -> bytes:
    """The 32-byte AES-GCM key (crypto.load_key: `encryption_key`, else the key file, the
    default one made 0600 on the first start); StartError when it is unusable."""
    from .crypto import KeyConfigError
    from .crypto import load_key as crypto_load_key
    try:
        return crypto_load_key(config)
    except KeyConfigError as exc:
        raise StartError(str(exc)) from None
    except OSError as exc:                      # the default key file cannot be made
        raise StartError(f"key file {config.key_path} cannot be written: {exc.strerror or exc}",
                         EXIT_DATA_DIR) from None


def retention_days(config: ServerConfig) -> int:
    """[retention].days as the retention component reads it (90 when absent)."""
    try:
        from .retention import RetentionConfig
    except ImportError:
        days = config.section("retention").get("days", 90)
        return days if isinstance(days, int) else 90
    return RetentionConfig.from_dict(config.section("retention")).days


def open_store(config: ServerConfig, key: bytes):
    """The store for this config (migrations run); StartError when it cannot be opened."""
    from .store import Store
    days = retention_days(config)                 # ConfigError -> exit 2, before the database
    try:
        return Store.open(config.db_url, config.data_dir, key, default_retention_days=days)
    except Exception as exc:   # noqa: BLE001 - any driver error becomes one clear line
        where = redact_url(config.db_url)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartError(f"database {where} cannot be opened: {text}") from None


class Service:
    """One node of the fax service."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.node = config.node
        self.store = None
        self.key: bytes = b""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.components: list[Any] = []
        self.http_address: tuple[str, int] | None = None
        self.smtp_address: tuple[str, int] | None = None
        #: words components add to the ready line ("fax sip://127.0.0.1:5060", "smtp ...")
        self.announce: list[str] = []
        self.web = WebConfig.from_dict(config.section("web"))
        self._wake: dict[str, asyncio.Event] = {}
        self._db_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: set[concurrent.futures.Future] = set()
        self._node_lock = None
        self._started: list[Any] = []
        self.stopped: asyncio.Event | None = None       # made in start(), in the loop

    # --- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = {name: asyncio.Event() for name in WAKE_NAMES}
        self.stopped = asyncio.Event()
        self._db_pool = concurrent.futures.ThreadPoolExecutor(DB_THREADS, thread_name_prefix="xmfax-db")
        try:
            prepare_data_dir(self.config.data_dir)
            self._lock_node()
            self.key = load_key(self.config)
            self.store = await asyncio.to_thread(open_store, self.config, self.key)
            await self.db(self.seed)
            self.components = self._make_components()
            for comp in self.components:
                recover = getattr(comp, "recover", None)
                if recover is not None:
                    await recover()
            for comp in self.components:
                try:
                    await comp.start()
                except StartError:
                    raise
                except (OSError, SystemExit) as exc:
                    what = type(comp).__name__
                    if what == "HttpServer":
                        what = f"HTTP cannot listen on {self.config.http}"
                    else:
                        what = f"{what} cannot start"
                    raise StartError(f"{what}: {_why(exc)}") from None
                self._started.append(comp)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the components in reverse order, then close the store. Idempotent."""
        while self._started:
            comp = self._started.pop()
            try:
                await asyncio.wait_for(comp.stop(), STOP_COMPONENT_WAIT)
            except TimeoutError:
                log.error("%s did not stop within %.0f s; going on", type(comp).__name__, STOP_COMPONENT_WAIT)
            except Exception:   # noqa: BLE001 - keep stopping the others
                log.exception("stopping %s failed", type(comp).__name__)
        if self._inflight:                    # store calls of cancelled tasks still running
            pending = list(self._inflight)
            _, late = await asyncio.to_thread(concurrent.futures.wait, pending, STOP_DB_WAIT)
            if late:
                log.warning("%d store call(s) still running after %.0f s", len(late), STOP_DB_WAIT)
        if self.store is not None:
            store, self.store = self.store, None
            await asyncio.to_thread(store.close)
        if self._db_pool is not None:
            pool, self._db_pool = self._db_pool, None
            pool.shutdown(wait=False, cancel_futures=True)
        if self._node_lock is not None:
            self._node_lock.close()                   # releases the flock
            self._node_lock = None
        if self.stopped is not None:
            self.stopped.set()

    def _lock_node(self) -> None:
        """One running process per node name and data folder: two nodes sharing a folder
        (as several nodes share the encrypted files) under one name would take each other's
        claims for their own. A flock, released by the kernel when the process dies."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.node)
        path = self.config.data_dir / f".node-{safe}.lock"
        try:
            f = open(path, "a+b")
        except OSError as exc:
            raise StartError(f"{path} cannot be opened: {exc.strerror or exc}", EXIT_DATA_DIR) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise StartError(f"node {self.node} already runs on data folder {self.config.data_dir}: "
                             "give each node sharing a folder its own --node") from None
        self._node_lock = f

    def _make_components(self) -> list[Any]:
        made = []
        for module, cls in COMPONENTS:
            try:
                mod = importlib.import_module(f"{__package__}.{module}")
            except ConfigError:
                raise
            except Exception as exc:   # noqa: BLE001 - every component must load: a failed import stops the start
                raise StartError(f"component {module} cannot be loaded: {type(exc).__name__}: {exc}") from None
            try:
                made.append(getattr(mod, cls)(self))
            except ConfigError as exc:
                raise StartError(f"config: {exc}", EXIT_USAGE) from None
        return made

    def component(self, cls_name: str) -> Any | None:
        """The running component of that class name (e.g. "Outbound"), or None."""
        return next((c for c in self.components if type(c).__name__ == cls_name), None)

    # --- directory seeding ------------------------------------------------------------
    def seed(self) -> None:
        """Upsert the numbers, users, destinations and rules the config names (config
        wins for what it names; what the web page added and the config does not name stays).
        [[rules]] in the config replace the whole table: the order is the rule."""
        store, cfg = self.store, self.config
        for d in cfg.destinations:
            params = {k: v for k, v in d.items() if k not in ("name", "type")}
            store.upsert_destination(d["name"], d["type"], params)
        for u in cfg.users:
            store.upsert_user(u["name"], email=u.get("email", ""), destinations=list(u.get("destinations", [])))
        for n in cfg.numbers:
            store.upsert_number(str(n["number"]), csid=n.get("csid", ""), users=list(n.get("users", [])),
                                retention_days=n.get("retention_days"), label=n.get("label", ""))
        if cfg.rules:
            rules = []
            for i, r in enumerate(cfg.rules):
                rule = {"position": i, "name": r.get("name", f"rule {i + 1}"), "kind": r["kind"],
                        "dnis": r.get("dnis", ""), "ani": r.get("ani", ""),
                        "destinations": list(r.get("destinations", [])),
                        "continue": bool(r.get("continue", False)), "callable": r.get("callable", "")}
                rules.append(rule)
            store.set_rules(rules)

    # --- helpers for components ---------------------------------------------------------
    async def db(self, fn, *args, **kw):
        """Run a (synchronous) store call in a worker thread. The call is tracked until its
        thread is done (even when the awaiting task is cancelled), so stop() closes the
        store only after the last one: closing SQLite under a running query crashes."""
        if self._db_pool is None:
            raise RuntimeError("the service is not running")
        ctx = contextvars.copy_context()
        future = self._db_pool.submit(ctx.run, fn, *args, **kw)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return await asyncio.wrap_future(future)

    def wake(self, what: str) -> None:
        """Tell the `what` worker ("outbound", "notify" ...) it has work now. Safe to call
        from any thread."""
        if self.loop is None:
            return
        if _in_loop(self.loop):
            self._event(what).set()
        else:
            self.loop.call_soon_threadsafe(lambda: self._event(what).set())

    def _event(self, what: str) -> asyncio.Event:
        event = self._wake.get(what)
        if event is None:
            event = self._wake[what] = asyncio.Event()
        return event

    async def wait(self, what: str, timeout: float) -> bool:
        """Wait until wake(what) or `timeout` seconds: True when woken (the flag is cleared)."""
        event = self._event(what)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        event.clear()
        return True

    def ready_line(self) -> str:
        host, port = self.http_address or self.config.http_host_port()
        shown = f"[{host}]" if ":" in host else host
        words = " ".join(self.announce)
        line = (f"serve: ready on {self.config.http_scheme}://{shown}:{port} "
                f"(node {self.node}, db {self.config.db_kind})")
        return f"{line} {words}" if words else line


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return "it exited (is the port in use?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
