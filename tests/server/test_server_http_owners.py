"""Hardening of the REST API through its real port, on SQLite and a real PostgreSQL:
who sees which fax (owners, the admin permission, received faxes) and which webhooks and
email addresses a request may name (checked at submit, and at delivery against a real
HTTP server)."""
from __future__ import annotations

import time

import httpx
import pytest

from http_kit import LiveService
from notifykit import Hook

HEADER = "XM-Token-Authorization"
LATER = str(int(time.time()) + 30 * 86400)   # scheduled a month ahead: the fax stays queued


def xml(notifications: str = "", schedule: str = LATER) -> bytes:
    when = f"<schedule>{schedule}</schedule>" if schedule else ""
    notes = f"<notifications>{notifications}</notifications>" if notifications else ""
    return (f"<schedulefax><recipient><number>+15551234567</number></recipient>{when}"
            f"<retries>0</retries>{notes}</schedulefax>").encode()


def send(node, token: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{node.url}/sendfax", headers={HEADER: token}, timeout=60,
                      files=[("metadata", ("fax.xml", body, "application/xml")),
                             ("attachments", ("a.txt", b"Hello fax\n", "text/plain"))])


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return r.json()["successInfo"]["transactionIds"]["transactionId"]


def error(r: httpx.Response) -> tuple[int, str, str]:
    info = r.json()["errorInfo"]
    return r.status_code, info["errorCode"], info["errorMsg"]


@pytest.fixture(scope="module")
def hook():
    with Hook([200]) as h:
        yield h


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.interop)])
def node(request, tmp_path_factory, hook):
    tmp = tmp_path_factory.mktemp(f"owners-{request.param}")
    database = request.getfixturevalue("pg_server").create_database() if request.param == "postgresql" else ""
    notify = {"webhook_allow": ["localhost", f"http://127.0.0.1:{hook.port}/hooks", "10.0.0.5", "*.example.com"],
              "email_allow": ["example.com", "*.example.org"], "request_destinations": ["archive"]}
    destinations = [{"name": "archive", "type": "folder", "path": str(tmp / "archive"), "create": True},
                    {"name": "front-desk", "type": "printer", "printer": "FrontDesk"}]
    with LiveService(tmp, database=database, far_end=True, outbound={"retry_delays": [0.2]}, notify=notify,
                     limits={"max_notifications": 3}, sections={"destinations": destinations}) as live:
        live.tok = {"alice": live.token("alice"), "alice-ro": live.token("alice-ro", "read", owner="alice"),
                    "bob": live.token("bob"), "root": live.token("root", "admin")}
        yield live


def get(node, who: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{node.url}/{path}", headers={HEADER: node.tok[who]}, params=params, timeout=30)


def listed(node, who: str, **params) -> set[str]:
    r = get(node, who, "transactions", limit=1000, **params)
    assert r.status_code == 200, r.text
    return {t["transactionId"] for t in r.json()["successInfo"]["transactions"]["transaction"]}


# -- ownership -----------------------------------------------------------------------------

def test_owners_another_tokens_fax_is_not_found(node):
    (fax,) = ids(send(node, node.tok["alice"], xml()))
    r = send(node, node.tok["bob"], xml())
    (bob_fax,) = ids(r)
    broadcast = get(node, "alice", f"transactions/{fax}").json()["successInfo"]["transaction"]["broadcastId"]
    unknown = "0123456789abcdef"
    # bob: every route answers exactly as for an id that does not exist
    for path in (f"transactions/{fax}", f"transactions/{fax}/document"):
        status, code, msg = error(get(node, "bob", path))
        assert (status, code) == (404, "not_found") and "exist" not in msg
        assert error(get(node, "bob", path.replace(fax, unknown)))[:2] == (404, "not_found")
    assert error(get(node, "bob", f"transactions/{fax}")) == \
        (404, "not_found", f"no transaction '{fax}'")
    assert error(get(node, "bob", f"broadcasts/{broadcast}"))[:2] == (404, "not_found")
    for cancel in (lambda: httpx.post(f"{node.url}/transactions/{fax}/cancel", headers={HEADER: node.tok["bob"]}),
                   lambda: httpx.delete(f"{node.url}/transactions/{fax}", headers={HEADER: node.tok["bob"]})):
        assert error(cancel())[:2] == (404, "not_found")
    assert get(node, "alice", f"transactions/{fax}").json()["successInfo"]["transaction"]["status"] == "queued"
    # lists: each owner sees its own; the read token of alice's owner sees alice's; admin sees all
    assert fax in listed(node, "alice") and bob_fax not in listed(node, "alice")
    assert bob_fax in listed(node, "bob") and fax not in listed(node, "bob")
    assert fax in listed(node, "alice-ro") and bob_fax not in listed(node, "alice-ro")
    assert {fax, bob_fax} <= listed(node, "root")
    assert listed(node, "bob", broadcastId=broadcast) == set()
    assert get(node, "alice-ro", f"transactions/{fax}").status_code == 200
    assert get(node, "alice-ro", f"broadcasts/{broadcast}").status_code == 200
    assert get(node, "root", f"broadcasts/{broadcast}").status_code == 200
    # admin may cancel anyone's fax; the owner then sees it cancelled
    r = httpx.post(f"{node.url}/transactions/{bob_fax}/cancel", headers={HEADER: node.tok["root"]})
    assert r.status_code == 200 and r.json()["successInfo"]["transaction"]["status"] == "cancelled"


def test_owners_a_rotated_token_keeps_its_faxes(node):
    store = node.service.store
    carol = node.token("carol")
    (fax,) = ids(send(node, carol, xml()))
    assert store.revoke_token("carol")
    assert httpx.get(f"{node.url}/transactions/{fax}", headers={HEADER: carol}).status_code == 401
    carol2 = node.token("carol")
    r = httpx.get(f"{node.url}/transactions/{fax}", headers={HEADER: carol2})
    assert r.status_code == 200 and r.json()["successInfo"]["transaction"]["transactionId"] == fax


def test_owners_received_and_tokenless_faxes_are_the_admins(node):
    store = node.service.store
    inbound = store.create_fax(direction="in", status="received", number="+15550001111", dnis="+15550001111",
                               created_at=time.time())
    mailed = store.create_fax(direction="out", status="queued", number="+15557654321", sender="a@example.com",
                              created_at=time.time(), scheduled_at=4102444800.0, next_attempt_at=4102444800.0)
    for who in ("alice", "alice-ro", "bob"):
        for fax in (inbound, mailed):
            assert error(get(node, who, f"transactions/{fax}"))[:2] == (404, "not_found")
        assert inbound not in listed(node, who, direction="in")
    assert get(node, "root", f"transactions/{inbound}").status_code == 200
    assert {inbound, mailed} <= listed(node, "root")


def test_owners_cdrs_are_an_admin_export(node):
    for who in ("alice", "alice-ro"):
        assert error(get(node, who, "cdrs.csv"))[:2] == (403, "forbidden")
    r = get(node, "root", "cdrs.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")


# -- what a request may name ----------------------------------------------------------

@pytest.mark.parametrize("note, why", [
    ("<webhook>http://internal.corp/hook</webhook>", "'internal.corp' (or its path) is not in this service's "
                                                     "[notify] webhook_allow"),
    ("<webhook>http://127.0.0.1:{port}/hooksX</webhook>", "is not in this service's [notify] webhook_allow"),
    ("<webhook>http://127.0.0.1:{port}/hooks/in</webhook>", "127.0.0.1 is a loopback address"),
    ("<webhook>http://10.0.0.5/hook</webhook>", "10.0.0.5 is a private address"),
    ("<webhook>http://evil.net/?https://a.example.com/</webhook>", "'evil.net'"),
    ("<webhook>http://a.example.com@evil.net/</webhook>", "'evil.net'"),
    ("<email>x@evil.net</email>", "email domain 'evil.net' is not in this service's [notify] email_allow"),
    ("<email>x@example.org</email>", "email domain 'example.org'"),
    ("<destination>front-desk</destination>", "destination 'front-desk' may not be named in a request "
                                              "([notify] request_destinations)"),
])
def test_owners_request_named_targets_refused_at_submit(node, hook, note, why):
    r = send(node, node.tok["alice"], xml(note.format(port=hook.port)))
    status, code, msg = error(r)
    assert (status, code) == (422, "invalid_metadata") and msg.startswith("metadata notification 1: ")
    assert why in msg, msg


def test_owners_allowed_targets_are_accepted(node):
    notes = "<destination>archive</destination><email>a@sales.example.org</email><webhook>https://h.example.com/x</webhook>"
    (fax,) = ids(send(node, node.tok["alice"], xml(notes)))
    assert get(node, "alice", f"transactions/{fax}").json()["successInfo"]["transaction"]["status"] == "queued"


def test_owners_notification_count_is_capped(node):
    three = "<email>a@example.com</email><email>b@example.com</email><email>c@sales.example.org</email>"
    assert len(ids(send(node, node.tok["alice"], xml(three)))) == 1
    status, code, msg = error(send(node, node.tok["alice"], xml(three + "<email>d@example.com</email>")))
    assert (status, code) == (413, "too_many") and "at most 3 per request ([limits] max_notifications)" in msg


def test_owners_allowed_name_resolving_to_loopback_is_refused_at_delivery(node, hook):
    """localhost is in webhook_allow, but it resolves to 127.0.0.1 and webhook_allow_private
    is off: the fax is really sent, the webhook never called, its notification failed."""
    url = f"http://localhost:{hook.port}/hooks"
    (fax,) = ids(send(node, node.tok["alice"], xml(f"<webhook>{url}</webhook>", schedule="")))
    deadline = time.monotonic() + 30
    while True:
        tx = get(node, "alice", f"transactions/{fax}").json()["successInfo"]["transaction"]
        if tx["notifyStatus"] in ("delivered", "failed"):
            break
        assert time.monotonic() < deadline, tx
        time.sleep(0.1)
    assert tx["status"] == "sent" and tx["notifyStatus"] == "failed"
    (note,) = tx["notifications"]["notification"]
    assert note["status"] == "failed" and note["attempts"] == 1
    assert note["lastError"].startswith(f"webhook {url}: refused: localhost resolves to ")
    assert "loopback address" in note["lastError"]
    assert not [r for r in hook.requests if r["headers"].get("X-XMFax-Transaction") == fax]


def test_owners_allowed_private_webhook_is_delivered(tmp_path):
    """With webhook_allow_private an allowed loopback webhook named in a request is called
    (SQLite only: the delivery path does not depend on the database)."""
    with Hook([200]) as far:
        with LiveService(tmp_path, far_end=True, notify={
                "webhook_allow": [f"http://localhost:{far.port}/in"], "webhook_allow_private": True}) as live:
            token = live.token("app")
            (fax,) = ids(send(live, token, xml(f"<webhook>http://localhost:{far.port}/in/fax</webhook>",
                                               schedule="")))
            (req,) = far.wait(1, timeout=30)
            deadline = time.monotonic() + 10
            while True:
                tx = httpx.get(f"{live.url}/transactions/{fax}", headers={HEADER: token}).json()
                if tx["successInfo"]["transaction"]["notifyStatus"] == "delivered":
                    break
                assert time.monotonic() < deadline, tx
                time.sleep(0.1)
    assert req["path"] == "/in/fax" and req["headers"]["Host"] == f"localhost:{far.port}"
    assert req["headers"]["X-XMFax-Transaction"] == fax
