"""Notifications: enqueue, the Notifier's passes (retries, backoff, all-must-succeed,
zero retention), the webhook through a real HTTP server. Both databases (the `store`
fixture is parametrised sqlite/postgresql). Email, folder and printer:
test_server_notify_targets.py; kill -9: test_server_notify_crash.py."""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from notifykit import Hook, MiniService, make_fax, verify_signature
from storekit import sealed_files
from xmfax.server.config import ConfigError
from xmfax.server.notify import NotifyConfig, Notifier, enqueue

SECRET = b"s3cret-for-tests"
#: the fake clock's zero: rows are due from their creation (real time), so the passes run later
T0 = float(int(__import__("time").time()) + 3600)


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch):
    monkeypatch.setenv("XMFAX_TEST_HOOK_SECRET", SECRET.decode())


def svc(store, data_dir, **notify):
    # the unnamed webhooks here stand for request-named ones: the test far ends are on loopback
    sections = {"notify": {"retry_delays": [30, 120], "max_attempts": 3,
                           "webhook_secret_env": "XMFAX_TEST_HOOK_SECRET", "webhook_allow": ["127.0.0.1"],
                           "webhook_allow_private": True, **notify}}
    return MiniService(store, data_dir, sections, public_url="https://fax.example")


def run(coro):
    return asyncio.run(coro)


def kinds(store, fax_id):
    return [(e["kind"], e["message"]) for e in store.events(fax_id)]


# -- config ---------------------------------------------------------------------------

def test_notify_config_defaults_and_errors():
    cfg = NotifyConfig.from_dict({})
    assert cfg.retry_delays == [30, 120, 600, 1800, 3600] and cfg.max_attempts == 8
    assert [cfg.delay(n) for n in (1, 2, 5, 6, 9)] == [30, 120, 3600, 3600, 3600]
    for bad, word in [({"retry": 1}, "retry: unknown key"), ({"retry_delays": []}, "retry_delays"),
                      ({"retry_delays": [1, -2]}, "retry_delays"), ({"max_attempts": 0}, "max_attempts"),
                      ({"max_attempts": True}, "max_attempts"), ({"poll_interval": "5"}, "poll_interval"),
                      ({"heartbeat": 60, "stale_after": 30}, "stale_after"),
                      ({"webhook_secret_env": 3}, "webhook_secret_env")]:
        with pytest.raises(ConfigError, match=word):
            NotifyConfig.from_dict(bad)


# -- webhook: retried then delivered, signed ----------------------------------------------

def test_notify_webhook_500_then_200_is_retried_then_delivered(store, data_dir):
    with Hook([500, 200]) as hook:
        service = svc(store, data_dir)
        fax_id = make_fax(store)
        notifier = Notifier(service)

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": hook.url, "name": "crm"}])
            assert "notify" in service.woken
            assert store.get_fax(fax_id)["notify_status"] == "pending"
            t0 = T0
            assert await notifier.run_once(t0) == 1                      # HTTP 500: temporary
            n = store.notifications(fax_id)[0]
            assert (n["status"], n["attempts"], n["next_attempt_at"]) == ("pending", 1, t0 + 30)
            assert "HTTP 500" in n["last_error"]
            assert await notifier.run_once(t0 + 29.9) == 0               # not due yet
            assert await notifier.run_once(t0 + 30) == 1                 # HTTP 200
        run(go())
        first, second = hook.wait(2)
    n = store.notifications(fax_id)[0]
    assert (n["status"], n["attempts"]) == ("delivered", 2)
    fax = store.get_fax(fax_id)
    assert fax["notify_status"] == "delivered" and fax["purged_at"] is None
    log = kinds(store, fax_id)
    assert ("notify", "webhook 'crm': attempt 1 of 3 failed: webhook %s: HTTP 500 Internal Server Error; next in 30 s"
            % hook.url) in log
    assert any(k == "notify" and m.startswith("webhook 'crm': delivered (attempt 2)") for k, m in log)
    assert log[-1] == ("delivered", "all 1 notification(s) delivered")
    # the signature covers timestamp + "." + the exact body; a changed byte fails it
    for req in (first, second):
        assert verify_signature(SECRET, req)
        assert not verify_signature(SECRET, dict(req, body=req["body"] + b" "))
        assert not verify_signature(b"other", req)
    body = json.loads(second["body"])
    assert body["fax"]["id"] == fax_id and body["fax"]["pages"] == 2 and body["attempt"] == 2
    assert body["fax"]["remote_id"] == "+1 555 765 4321" and "claimed_by" not in body["fax"]
    assert body["download_url"] == f"https://fax.example/restservice/transactions/{fax_id}/document?format=pdf"
    assert second["headers"]["X-XMFax-Delivery"] == str(n["id"])
    assert [e["kind"] for e in body["events"]][:1] == ["notify"]


def test_notify_webhook_400_is_permanent_and_429_retry_after_is_honoured(store, data_dir):
    with Hook([400]) as bad, Hook([429, 204], headers={"Retry-After": "100"}) as slow:
        service = svc(store, data_dir)
        fax_id = make_fax(store)
        notifier = Notifier(service)

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": bad.url, "name": "bad"},
                                            {"type": "webhook", "url": slow.url, "name": "slow"}])
            await notifier.run_once(T0 + 500)
            rows = {r["destination"]["name"]: r for r in store.notifications(fax_id)}
            assert rows["bad"]["status"] == "failed" and "HTTP 400" in rows["bad"]["last_error"]
            # 429 with Retry-After: 100 waits 100 s, not the configured 30
            assert rows["slow"]["status"] == "pending" and rows["slow"]["next_attempt_at"] == T0 + 600
            assert await notifier.run_once(T0 + 599) == 0
            assert await notifier.run_once(T0 + 600) == 1
        run(go())
    rows = {r["destination"]["name"]: r for r in store.notifications(fax_id)}
    assert rows["slow"]["status"] == "delivered"
    # all must succeed: one delivered and one failed is NOT delivered
    fax = store.get_fax(fax_id)
    assert fax["notify_status"] == "failed"
    assert not any(k == "delivered" for k, _ in kinds(store, fax_id))
    assert ("notify", "not delivered: webhook 'bad' failed") in kinds(store, fax_id)


def test_notify_gives_up_after_max_attempts_with_backoff(store, data_dir):
    with Hook([503]) as hook:
        service = svc(store, data_dir, retry_delays=[10, 40], max_attempts=4)
        fax_id = make_fax(store, direction="out")
        notifier = Notifier(service)
        due = []

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": hook.url}])
            now = T0
            for _ in range(4):
                assert await notifier.run_once(now) == 1
                row = store.notifications(fax_id)[0]
                due.append(row["next_attempt_at"])
                now = row["next_attempt_at"]
        run(go())
    assert len(hook.requests) == 4
    # delays 10, 40, then the last delay repeats; the 4th failure gives up
    assert due[:3] == [T0 + 10, T0 + 50, T0 + 90]
    row = store.notifications(fax_id)[0]
    assert row["status"] == "failed" and row["attempts"] == 4
    assert store.get_fax(fax_id)["notify_status"] == "failed"
    assert any(m.endswith(f"failed (gave up after 4 attempt(s)): webhook {hook.url}: HTTP 503 Service Unavailable")
               for _, m in kinds(store, fax_id))


def test_notify_webhook_unreachable_and_no_secret(store, data_dir, monkeypatch):
    service = svc(store, data_dir)
    fax_id = make_fax(store)
    notifier = Notifier(service)
    with Hook() as hook:
        dead = hook.url                              # a port nobody listens on after this
    run(enqueue(service, fax_id, [{"type": "webhook", "url": dead, "name": "dead"}]))
    run(notifier.run_once(T0))
    row = store.notifications(fax_id)[0]
    assert row["status"] == "pending" and "ConnectError" in row["last_error"]
    monkeypatch.delenv("XMFAX_TEST_HOOK_SECRET")
    run(notifier.run_once(T0 + 30))
    row = store.notifications(fax_id)[0]
    assert row["status"] == "failed"
    assert row["last_error"] == "webhook: environment variable XMFAX_TEST_HOOK_SECRET (the signing secret) is not set"


# -- enqueue ----------------------------------------------------------------------------

def test_notify_enqueue_resolves_names_records_bad_ones_and_dedups(store, data_dir):
    service = svc(store, data_dir)
    store.upsert_destination("archive", "folder", {"path": str(data_dir / "out"), "format": "tiff"})
    fax_id = make_fax(store)

    async def go():
        await enqueue(service, fax_id, ["archive", {"name": "nosuch"}, {"type": "fax"},
                                        {"type": "email", "to": []}])
        await enqueue(service, fax_id, [{"name": "archive"}])      # again (a recovery): not added twice
    run(go())
    rows = store.notifications(fax_id)
    assert [r["destination"].get("name") for r in rows] == ["archive", "nosuch", None, None]
    assert rows[0]["destination"] == {"name": "archive", "type": "folder", "path": str(data_dir / "out"),
                                      "format": "tiff"}
    assert rows[0]["status"] == "pending"
    assert [r["last_error"] for r in rows[1:]] == [
        "no destination named 'nosuch'", "type 'fax': one of email, folder, printer, webhook",
        "email destination: 'to' needs at least one address"]
    assert all(r["status"] == "failed" for r in rows[1:])
    assert store.get_fax(fax_id)["notify_status"] == "failed"


def test_notify_enqueue_without_destinations(store, data_dir):
    service = svc(store, data_dir)
    plain = make_fax(store, direction="out")
    zero_out = make_fax(store, direction="out", retention_days=0)
    zero_in = make_fax(store, direction="in", retention_days=0)

    async def go():
        for fax_id in (plain, zero_out, zero_in):
            await enqueue(service, fax_id, [])
    run(go())
    assert store.get_fax(plain)["notify_status"] == "delivered"
    assert store.files(plain)
    # zero retention with nothing to deliver: purged at once
    gone = store.get_fax(zero_out)
    assert gone["purged_at"] is not None and gone["number"] is None and store.files(zero_out) == []
    # inbound under zero retention must have a destination: kept, flagged
    kept = store.get_fax(zero_in)
    assert kept["notify_status"] == "failed" and kept["reason"] is None        # the call's outcome, untouched
    (flag,) = [e for e in store.events(zero_in) if e["kind"] == "notify"]
    assert flag["data"]["reason"] == "no_destination" and "kept, not purged" in flag["message"]
    assert kept["purged_at"] is None and store.files(zero_in)


# -- zero retention ------------------------------------------------------------------

def test_notify_zero_retention_purges_once_all_are_delivered(store, data_dir):
    with Hook([200]) as one, Hook([500, 200]) as two:
        service = svc(store, data_dir)
        fax_id = make_fax(store, retention_days=0)
        notifier = Notifier(service)

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": one.url},
                                            {"type": "webhook", "url": two.url}])
            await notifier.run_once(T0)
            # one delivered, one to retry: nothing purged yet
            fax = store.get_fax(fax_id)
            assert fax["purged_at"] is None and fax["number"] == "+15551230000" and store.files(fax_id)
            await notifier.run_once(T0 + 30)
        run(go())
    fax = store.get_fax(fax_id)
    assert fax["notify_status"] == "delivered" and fax["purged_at"] is not None
    assert fax["number"] is None and fax["ani"] is None and fax["remote_id"] is None
    assert store.files(fax_id) == []
    assert not list((data_dir / "files").rglob("*")) or all(p.is_dir() for p in (data_dir / "files").rglob("*"))
    assert not sealed_files(store, data_dir)
    assert [e["kind"] for e in store.events(fax_id)] == ["purge"]
    assert "zero retention: delivered" in store.events(fax_id)[0]["message"]


def test_notify_zero_retention_default_from_config(store, data_dir):
    with Hook([200]) as hook:
        service = svc(store, data_dir)
        service.config.sections["retention"] = {"days": 0}
        fax_id = make_fax(store)                              # retention_days None: the default applies
        notifier = Notifier(service)

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": hook.url}])
            await notifier.run_once(T0)
        run(go())
    assert store.get_fax(fax_id)["purged_at"] is not None


# -- recovery and the running loop ---------------------------------------------------------

def test_notify_recover_takes_back_rows_left_sending(store, data_dir):
    service = svc(store, data_dir)
    fax_id = make_fax(store)
    run(enqueue(service, fax_id, [{"type": "webhook", "url": "http://127.0.0.1:9/x"}]))
    claimed = store.claim_notifications("node-a", 1e12, 10)    # this node, then killed -9
    assert [r["status"] for r in claimed] == ["sending"]
    notifier = Notifier(service)
    assert run(notifier.recover()) == 1
    row = store.notifications(fax_id)[0]
    assert row["status"] == "pending" and row["claimed_by"] is None


def test_notify_loop_delivers_when_woken_and_stops_cleanly(store, data_dir):
    with Hook([200]) as hook:
        service = svc(store, data_dir, poll_interval=30)
        fax_ids = [make_fax(store) for _ in range(5)]
        notifier = Notifier(service)

        async def go():
            await notifier.start()
            for fax_id in fax_ids:
                await enqueue(service, fax_id, [{"type": "webhook", "url": hook.url}])
            for _ in range(200):                    # the poll interval is 30 s: only wake() can do it
                if all(store.get_fax(f)["notify_status"] == "delivered" for f in fax_ids):
                    break
                await asyncio.sleep(0.05)
            await notifier.stop()
        run(go())
        assert len(hook.requests) == 5
    assert all(store.get_fax(f)["notify_status"] == "delivered" for f in fax_ids)
    assert sorted(json.loads(r["body"])["fax"]["id"] for r in hook.requests) == sorted(fax_ids)


def test_notify_stop_mid_delivery_gives_the_row_back(store, data_dir):
    with Hook(hang=True) as hook:
        service = svc(store, data_dir, timeout=20)
        fax_id = make_fax(store)
        notifier = Notifier(service)

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": hook.url}])
            await notifier.start()
            while not hook.requests:
                await asyncio.sleep(0.02)
            assert store.notifications(fax_id)[0]["status"] == "sending"
            await notifier.stop()
        run(go())
    row = store.notifications(fax_id)[0]
    assert row["status"] == "pending" and row["claimed_by"] is None and row["attempts"] == 0


def test_notify_slow_delivery_is_not_taken_back_while_its_heartbeat_runs(store, data_dir):
    """A delivery longer than stale_after stays with its node (heartbeats), never sent twice."""
    with Hook(hang=True) as hook:
        service = svc(store, data_dir, timeout=1.5, heartbeat=0.1, stale_after=0.3, poll_interval=0.05)
        fax_id = make_fax(store)
        notifier = Notifier(service)

        async def go():
            await enqueue(service, fax_id, [{"type": "webhook", "url": hook.url}])
            await notifier.start()
            await asyncio.sleep(0.9)                 # three stale_after periods, the call still hanging
            await notifier.stop()
        run(go())
        assert len(hook.requests) == 1
    row = store.notifications(fax_id)[0]
    assert row["status"] == "pending" and row["attempts"] == 0      # given back at stop, not lost


def test_notify_timeout_is_a_temporary_failure(store, data_dir):
    with Hook(hang=True) as hook:
        service = svc(store, data_dir, timeout=0.3)
        fax_id = make_fax(store)
        notifier = Notifier(service)
        run(enqueue(service, fax_id, [{"type": "webhook", "url": hook.url, "timeout": 60}]))
        run(notifier.run_once(T0))
    row = store.notifications(fax_id)[0]
    assert row["status"] == "pending" and row["last_error"] == "no answer in 0.3 s"


def test_notify_two_notifiers_deliver_each_row_once(store, data_dir):
    """Two nodes on one database: every notification is delivered exactly once."""
    with Hook([200]) as hook:
        a, b = svc(store, data_dir), svc(store, data_dir)
        b.node = "node-b"
        fax_ids = [make_fax(store, image=False) for _ in range(12)]

        async def go():
            for fax_id in fax_ids:
                await enqueue(a, fax_id, [{"type": "webhook", "url": hook.url}])
            na, nb = Notifier(a), Notifier(b)
            for _ in range(4):
                await asyncio.gather(na.run_once(T0), nb.run_once(T0))
        run(go())
    assert sorted(json.loads(r["body"])["fax"]["id"] for r in hook.requests) == sorted(fax_ids)
    assert all(store.get_fax(f)["notify_status"] == "delivered" for f in fax_ids)


def test_notify_purged_fax_fails_its_notification(store, data_dir):
    service = svc(store, data_dir)
    fax_id = make_fax(store)
    run(enqueue(service, fax_id, [{"type": "webhook", "url": "http://127.0.0.1:9/"}]))
    store.purge_fax(fax_id, "expired")
    run(Notifier(service).run_once(T0))
    row = store.notifications(fax_id)[0]
    assert row["status"] == "failed" and "purged" in row["last_error"]
