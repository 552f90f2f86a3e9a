"""Retention: how long faxes and their event logs are kept, and the purge that ends it.

``[retention]``: ``days`` (default 90; 0 = zero retention; else at least 7) and
``purge_interval`` (seconds between purge runs, default 3600). A fax expires at
completed_at + its retention (the number's or the request's `retention_days`, else
``days``); `Store.complete_fax` stamps `expires_at`. A zero-retention fax is purged by the
notifier as soon as all its notifications are delivered; this component is the backstop
for every other expiry (see `Store.expired`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from .config import ConfigError

log = logging.getLogger("xmfax.server.retention")
MIN_DAYS = 7


def check_days(days, where: str) -> int:
    """A retention in days: 0 (zero retention) or an integer >= 7."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise ConfigError(f"{where}: {days!r} is not a whole number of days")
    if days != 0 and days < MIN_DAYS:
        raise ConfigError(f"{where}: {days} days; 0 (zero retention) or at least {MIN_DAYS}")
    return days


@dataclass
class RetentionConfig:
    days: int = 90
    purge_interval: float = 3600.0

    @classmethod
    def from_dict(cls, d: dict) -> "RetentionConfig":
        unknown = sorted(set(d) - {"days", "purge_interval"})
        if unknown:
            raise ConfigError(f"[retention] {unknown[0]}: unknown key (known: days, purge_interval)")
        days = check_days(d.get("days", 90), "[retention] days")
        interval = d.get("purge_interval", 3600.0)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
            raise ConfigError(f"[retention] purge_interval: {interval!r}, need a number of seconds > 0")
        return cls(days=days, purge_interval=float(interval))


class Retention:
    """Purges expired faxes every `purge_interval` seconds (and when woken: "retention")."""

    def __init__(self, service):
        self.service = service
        self.config = RetentionConfig.from_dict(service.config.section("retention"))
        self._task: asyncio.Task | None = None
        self.purged = 0

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run_once(self, now: float | None = None) -> int:
        """Purge every fax expired at `now`; returns how many were purged."""
        now = time.time() if now is None else now
        store = self.service.store
        count = 0
        for fax_id in await self.service.db(store.expired, now):
            try:
                await self.service.db(store.purge_fax, fax_id, "expired")
            except Exception:                  # one bad row must not stop the others
                log.exception("retention: purge of %s failed", fax_id)
                continue
            count += 1
        self.purged += count
        try:
            swept = await self.service.db(store.sweep_orphans, time.time())   # file ages: the real clock
            if swept:
                log.info("retention: deleted %d orphaned file(s) left by a crash", swept)
        except Exception:
            log.exception("retention: sweep of orphaned files failed")
        if count:
            try:
                await self.service.db(store.vacuum)       # PostgreSQL: drop the dead tuples now
            except Exception:
                log.exception("retention: vacuum after purge failed")
        if count:
            log.info("retention: purged %d expired fax(es)", count)
        return count

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention: purge run failed; next run in %.0f s", self.config.purge_interval)
            wait = getattr(self.service, "wait", None)
            if wait is not None:
                await wait("retention", self.config.purge_interval)
            else:
                await asyncio.sleep(self.config.purge_interval)
