"""Notifications: every destination of a fax gets it, with retries, and the fax counts as
delivered only when ALL of them succeeded.

:func:`enqueue` writes one ``notifications`` row per destination when a fax completes
(inbound: after routing; outbound: when sent or failed). The :class:`Notifier` component
claims due rows (``store.claim_notifications``: two nodes never take the same row),
delivers them concurrently (at most ``concurrency`` at a time) through
:mod:`.destinations`, and then:

* success: the row is ``delivered``; when every row of the fax is, the fax's
  ``notify_status`` becomes ``delivered`` (a ``delivered`` event), and under zero
  retention the fax is purged at once (``store.purge_fax``);
* a temporary error: the row goes back to ``pending`` with ``next_attempt_at`` later by
  ``retry_delays[attempt - 1]`` (the last delay repeats) until ``max_attempts``;
* a permanent error, or attempts exhausted: the row is ``failed`` and so is the fax's
  ``notify_status`` (the fax is then never purged by zero retention: someone must look).

Every attempt is a ``notify`` event naming the destination and the outcome.

Delivery is at-least-once: a node killed after the far end took a notification but
before the row was marked delivered sends it again after the restart (rows it left
``sending``, and any node's rows whose heartbeat went stale, are made ``pending`` again).
Webhooks carry ``X-XMFax-Delivery`` (the notification id) so a receiver can drop repeats.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import ConfigError
from .destinations import DeliveryError, check_destination, deliver, json_field
from .egress import Policy, check_email_pattern, check_webhook_pattern

log = logging.getLogger("xmfax.server.notify")

_KEYS = ("retry_delays", "max_attempts", "poll_interval", "webhook_secret_env", "concurrency", "timeout",
         "heartbeat", "stale_after", "webhook_allow", "webhook_allow_private", "email_allow", "request_destinations")


@dataclass
class NotifyConfig:
    retry_delays: list[float] = field(default_factory=lambda: [30.0, 120.0, 600.0, 1800.0, 3600.0])
    max_attempts: int = 8
    poll_interval: float = 5.0          # fallback polling; enqueue wakes the notifier at once
    webhook_secret_env: str = ""        # default environment variable holding the webhook secret
    concurrency: int = 8                # deliveries in flight per node
    timeout: float = 300.0              # one attempt at most, then it counts as a temporary failure
    heartbeat: float = 15.0             # a row being delivered is touched this often ...
    stale_after: float = 120.0          # ... and taken back by any node when untouched this long
    # where destinations named in a request may go (egress.py; admin-configured ones are not bound)
    webhook_allow: list[str] = field(default_factory=list)     # URL prefixes / host patterns; [] = none
    webhook_allow_private: bool = False  # request-named webhooks may reach loopback/private addresses
    email_allow: list[str] | None = None  # domain patterns / addresses; None (absent) = any address
    request_destinations: list[str] | None = None   # configured names a request may use; None = any

    @classmethod
    def from_dict(cls, d: dict) -> "NotifyConfig":
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ConfigError(f"[notify] {unknown[0]}: unknown key (known: {', '.join(_KEYS)})")
        cfg = cls()
        if "retry_delays" in d:
            v = d["retry_delays"]
            if (not isinstance(v, list) or not v
                    or any(not isinstance(x, (int, float)) or isinstance(x, bool) or x < 0 for x in v)):
                raise ConfigError("[notify] retry_delays: a non-empty list of seconds >= 0, e.g. [30, 120, 600]")
            cfg.retry_delays = [float(x) for x in v]
        for key in ("max_attempts", "concurrency"):
            if key in d:
                v = d[key]
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ConfigError(f"[notify] {key}: a whole number >= 1, not {v!r}")
                setattr(cfg, key, v)
        for key in ("poll_interval", "timeout", "heartbeat", "stale_after"):
            if key in d:
                v = d[key]
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                    raise ConfigError(f"[notify] {key}: seconds > 0, not {v!r}")
                setattr(cfg, key, float(v))
        if cfg.stale_after <= cfg.heartbeat:
            raise ConfigError(f"[notify] stale_after ({cfg.stale_after:g} s) must be longer than heartbeat "
                              f"({cfg.heartbeat:g} s)")
        for key, check in (("webhook_allow", check_webhook_pattern), ("email_allow", check_email_pattern)):
            if key in d:
                v = d[key]
                if not isinstance(v, list):
                    raise ConfigError(f"[notify] {key}: a list of patterns, e.g. [\"hooks.example.com\"]")
                for entry in v:
                    problem = check(entry)
                    if problem:
                        raise ConfigError(f"[notify] {key}: {problem}")
                setattr(cfg, key, list(v))
        if "request_destinations" in d:
            v = d["request_destinations"]
            if not isinstance(v, list) or any(not isinstance(x, str) or not x for x in v):
                raise ConfigError("[notify] request_destinations: a list of configured destination names")
            cfg.request_destinations = list(v)
        if "webhook_allow_private" in d:
            if not isinstance(d["webhook_allow_private"], bool):
                raise ConfigError("[notify] webhook_allow_private: true or false")
            cfg.webhook_allow_private = d["webhook_allow_private"]
        if "webhook_secret_env" in d:
            if not isinstance(d["webhook_secret_env"], str):
                raise ConfigError("[notify] webhook_secret_env: the name of an environment variable")
            cfg.webhook_secret_env = d["webhook_secret_env"]
        return cfg

    def policy(self) -> Policy:
        """Where request-named webhooks and email addresses may go."""
        return Policy(list(self.webhook_allow), self.webhook_allow_private,
                      None if self.email_allow is None else list(self.email_allow),
                      None if self.request_destinations is None else list(self.request_destinations))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return self.retry_delays[min(attempt, len(self.retry_delays)) - 1]


# -- helpers ------------------------------------------------------------------------

def label(dest: dict) -> str:
    """How a destination is named in events: ``webhook 'crm'`` or ``email ops@example.com``."""
    kind = dest.get("type") or "destination"
    if dest.get("name"):
        return f"{kind} '{dest['name']}'"
    detail = {"email": lambda: ", ".join(dest["to"]) if isinstance(dest.get("to"), list) else dest.get("to"),
              "folder": lambda: dest.get("path"), "printer": lambda: dest.get("printer"),
              "webhook": lambda: dest.get("url")}.get(kind, lambda: "")()
    return f"{kind} {detail}".strip()


def _summary(dest: dict) -> dict:
    return {"destination": dest.get("name", ""), "type": dest.get("type")}


def default_retention(service) -> int:
    days = service.config.section("retention").get("days", 90)
    return days if isinstance(days, int) and not isinstance(days, bool) else 90


def zero_retention(service, fax: dict) -> bool:
    days = fax.get("retention_days")
    return (default_retention(service) if days is None else days) == 0


async def _set_notify_status(service, fax_id: str, value: str, expect: tuple[str, ...],
                             event: tuple[str, str, dict | None] | None = None) -> bool:
    """Move the fax's notify_status to ``value`` if it is one of ``expect``, with ``event``
    (kind, message, data) in the same transaction; True when this call made the change (so
    the event and the purge that follow happen once)."""
    return await service.db(service.store.set_notify_status, fax_id, value, expect=expect, event=event)


async def _resolve(service, dest: Any) -> tuple[dict, str | None]:
    """A destination dict ready to store, and what is wrong with it (None: fine)."""
    if isinstance(dest, str):
        dest = {"name": dest}
    if not isinstance(dest, dict):
        return {"name": str(dest), "type": None}, f"not a destination: {dest!r}"
    if "type" not in dest and dest.get("name"):
        row = await service.db(service.store.get_destination, dest["name"])
        if row is None:
            return dict(dest, type=None), f"no destination named {dest['name']!r}"
        params = json_field(row.get("params"), {})
        resolved = {"name": row["name"], "type": row["type"], **params}
        for key, value in dest.items():          # per-fax overrides (e.g. max_attempts)
            resolved.setdefault(key, value)
        dest = resolved
    return dest, check_destination(dest)


# -- enqueue ------------------------------------------------------------------------

async def enqueue(service, fax_id: str, destinations: list) -> None:
    """Add one notification row per destination of a completed fax and wake the notifier.

    ``destinations``: dicts (``{"type": "email", "to": [...]}``), or names of configured
    destinations (``{"name": "sales"}`` or ``"sales"``). A name that is not configured or a
    destination that cannot work is recorded as a failed notification (never dropped).
    An empty list: ``notify_status`` "delivered" (nothing to do; zero retention purges
    now), except an inbound fax under zero retention, which must have a destination: it
    is kept, its ``notify_status`` "failed" with a ``notify`` event (reason ``no_destination``;
    the fax's own ``reason`` stays the call's outcome). A destination equal to
    one the fax already has is not added twice (so a recovery may call this again).
    """
    store = service.store
    fax = await service.db(store.get_fax, fax_id)
    if fax is None:
        raise KeyError(f"no fax {fax_id}")
    existing = [json_field(n.get("destination"), {}) for n in await service.db(store.notifications, fax_id)]
    added, failed = [], []
    for raw in destinations:
        dest, problem = await _resolve(service, raw)
        if dest in existing:
            continue
        existing.append(dest)
        nid = await service.db(store.add_notification, fax_id, dest)
        if problem:
            await service.db(store.update_notification, nid, status="failed", last_error=problem)
            await service.db(store.add_event, fax_id, "notify", f"{label(dest)}: cannot be delivered: {problem}",
                             dict(_summary(dest), notification=nid, outcome="failed", error=problem))
            failed.append(nid)
        else:
            added.append(label(dest))
    if added:
        await service.db(store.add_event, fax_id, "notify",
                         f"{len(added)} notification(s) queued: {', '.join(added)}", {"queued": added})
    rows = await service.db(store.notifications, fax_id)
    if failed or any(r["status"] == "failed" for r in rows):
        await _set_notify_status(service, fax_id, "failed", ("none", "pending", "delivered"),
                                 ("notify", "not delivered: a notification cannot be delivered", {"outcome": "failed"}))
    elif rows and any(r["status"] != "delivered" for r in rows):
        await _set_notify_status(service, fax_id, "pending", ("none", "pending", "delivered"))
    elif not rows:
        if fax["direction"] == "in" and zero_retention(service, fax):
            await _set_notify_status(service, fax_id, "failed", ("none", "pending"),
                                     ("notify", "no destination under zero retention: the fax is kept, not purged",
                                      {"outcome": "failed", "reason": "no_destination"}))
        elif await _set_notify_status(service, fax_id, "delivered", ("none", "pending"),
                                      ("delivered", "no notifications to deliver", {"notifications": 0})):
            if zero_retention(service, fax):
                await service.db(store.purge_fax, fax_id, "zero retention: delivered")
    service.wake("notify")


# -- the component ------------------------------------------------------------------

class Notifier:
    """Delivers pending notifications: ``start()`` runs the loop, ``run_once(now)`` one pass."""

    def __init__(self, service, *, clock: Callable[[], float] = time.time):
        self.service = service
        self.config = NotifyConfig.from_dict(service.config.section("notify"))
        self.clock = clock
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self._stopping = False

    # life cycle
    async def recover(self, *, own: bool = True) -> int:
        """Rows whose heartbeat is stale, and (``own``: at start, before this node delivers
        anything) rows this node left ``sending`` when it was killed, go back to
        ``pending``, due now. Returns how many."""
        store, now = self.service.store, self.clock()
        ids = await self.service.db(store.release_notifications, now, self.config.stale_after,
                                    node=self.service.node if own else None)
        for nid in ids:
            row = await self.service.db(store.get_notification, nid)
            if row is None:
                continue
            await self.service.db(store.add_event, row["fax_id"], "recovered",
                                  f"{label(json_field(row.get('destination'), {}))}: a node stopped while delivering "
                                  f"(attempt {(row.get('attempts') or 0) + 1}); delivering again",
                                  {"notification": row["id"], "by": self.service.node})
        if ids:
            log.info("notify: %d notification(s) taken back after a stop", len(ids))
        return len(ids)

    async def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._run(), name="xmfax-notifier")

    async def stop(self) -> None:
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        last_recover = self.clock()
        while not self._stopping:
            try:
                await self.run_once(wait=False)
                if self.clock() - last_recover >= self.config.stale_after:
                    last_recover = self.clock()
                    await self.recover(own=False)      # our own rows in flight are not stale
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 - a database hiccup must not end the loop
                log.exception("notify: pass failed; trying again in %g s", self.config.poll_interval)
            await self.service.wait("notify", self.config.poll_interval)

    # one pass
    async def run_once(self, now: float | None = None, *, wait: bool = True) -> int:
        """Claim the rows due at ``now`` (default: the clock) up to the free slots and
        deliver them; ``wait``: return when they are done. Returns how many were claimed."""
        explicit = now is not None
        now = self.clock() if now is None else now
        free = self.config.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        rows = await self.service.db(self.service.store.claim_notifications, self.service.node, now, free)
        started = []
        for row in rows:
            task = asyncio.create_task(self._deliver(row, now if explicit else None))
            self._tasks.add(task)
            task.add_done_callback(self._done)
            started.append(task)
        if wait and started:
            await asyncio.gather(*started, return_exceptions=True)
        return len(rows)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notify: delivery task failed", exc_info=task.exception())
        if not self._stopping:
            self.service.wake("notify")          # a slot is free: look for more work

    async def _heartbeat(self, nid: int) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat)
            # only while the row is still ours (another node may have taken a stale one back)
            await self.service.db(self.service.store.heartbeat_notifications, [nid], self.service.node,
                                  self.clock())

    async def _deliver(self, row: dict, at: float | None) -> None:
        svc, store = self.service, self.service.store
        nid, fax_id = row["id"], row["fax_id"]
        dest = json_field(row.get("destination"), {})
        attempt = (row.get("attempts") or 0) + 1
        fax = await svc.db(store.get_fax, fax_id)
        beat = asyncio.create_task(self._heartbeat(nid))
        try:
            if fax is None or fax.get("purged_at"):
                raise DeliveryError("the fax was purged before this notification was delivered", permanent=True)
            note = await asyncio.wait_for(deliver(svc, fax, dest, attempt, notification_id=nid), self.config.timeout)
        except asyncio.CancelledError:
            # the node is stopping: give the row back now rather than after stale_after
            beat.cancel()
            await asyncio.shield(svc.db(store.update_notification, nid, status="pending", claimed_by=None))
            raise
        except DeliveryError as exc:
            await self._failed(row, dest, attempt, exc.text, exc.permanent, exc.retry_after, at)
        except asyncio.TimeoutError:
            await self._failed(row, dest, attempt, f"no answer in {self.config.timeout:g} s", False, None, at)
        except Exception as exc:   # noqa: BLE001 - a bug in a deliverer must not lose the notification
            log.exception("notify: %s for fax %s", label(dest), fax_id)
            await self._failed(row, dest, attempt, f"{type(exc).__name__}: {exc}", False, None, at)
        else:
            await self._delivered(row, dest, attempt, note, at)
        finally:
            beat.cancel()

    async def _delivered(self, row: dict, dest: dict, attempt: int, note: str, at: float | None) -> None:
        svc, store = self.service, self.service.store
        nid, fax_id = row["id"], row["fax_id"]
        now = self.clock() if at is None else at
        await svc.db(store.update_notification, nid, status="delivered", attempts=attempt, delivered_at=now,
                     last_error=None, claimed_by=None)
        await svc.db(store.add_event, fax_id, "notify", f"{label(dest)}: delivered (attempt {attempt}): {note}",
                     dict(_summary(dest), notification=nid, attempt=attempt, outcome="delivered", note=note))
        await self._settle(fax_id)

    async def _failed(self, row: dict, dest: dict, attempt: int, text: str, permanent: bool,
                      retry_after: float | None, at: float | None) -> None:
        svc, store = self.service, self.service.store
        nid, fax_id = row["id"], row["fax_id"]
        now = self.clock() if at is None else at
        limit = dest.get("max_attempts") or self.config.max_attempts
        data = dict(_summary(dest), notification=nid, attempt=attempt, error=text)
        if not permanent and attempt < limit:
            delay = self.config.delay(attempt)
            if retry_after is not None:          # the far end asked: wait at least that, within reason
                delay = max(delay, min(retry_after, max(self.config.retry_delays)))
            await svc.db(store.update_notification, nid, status="pending", attempts=attempt,
                         next_attempt_at=now + delay, last_error=text, claimed_by=None)
            await svc.db(store.add_event, fax_id, "notify",
                         f"{label(dest)}: attempt {attempt} of {limit} failed: {text}; next in {delay:g} s",
                         dict(data, outcome="retry", delay=delay))
            return
        why = "permanent error" if permanent else f"gave up after {attempt} attempt(s)"
        await svc.db(store.update_notification, nid, status="failed", attempts=attempt, last_error=text,
                     claimed_by=None)
        await svc.db(store.add_event, fax_id, "notify", f"{label(dest)}: failed ({why}): {text}",
                     dict(data, outcome="failed"))
        fax = await svc.db(store.get_fax, fax_id)
        kept = " (zero retention: kept until someone looks)" if fax and zero_retention(svc, fax) else ""
        await _set_notify_status(svc, fax_id, "failed", ("none", "pending", "delivered"),
                                 ("notify", f"not delivered: {label(dest)} failed{kept}",
                                  {"outcome": "failed", "notification": nid}))

    async def _settle(self, fax_id: str) -> None:
        """After a row was delivered: when all are, the fax is delivered (and maybe purged)."""
        svc, store = self.service, self.service.store
        rows = await svc.db(store.notifications, fax_id)
        if not rows or any(r["status"] != "delivered" for r in rows):
            return
        if not await _set_notify_status(svc, fax_id, "delivered", ("none", "pending"),
                                        ("delivered", f"all {len(rows)} notification(s) delivered",
                                         {"notifications": len(rows)})):
            return
        fax = await svc.db(store.get_fax, fax_id)
        if fax is not None and zero_retention(svc, fax):
            await svc.db(store.purge_fax, fax_id, "zero retention: delivered")
