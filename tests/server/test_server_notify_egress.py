"""Where a webhook or email address named in a request may go (xmfax.server.egress): the
address classes refused, the allow-list patterns, and delivery through real HTTP and HTTPS
servers: a name resolving to loopback is refused at delivery, the connection goes to the
address that was checked, with the name in the Host header and in the TLS SNI (and the
certificate checked against the name, not the address)."""
from __future__ import annotations

import asyncio
import datetime as dt
import ssl

import pytest

from notifykit import Hook, MiniService, make_fax
from xmfax.server import destinations
from xmfax.server.config import ConfigError
from xmfax.server.egress import EgressRefused, Policy, address_problem, pin
from xmfax.server.notify import Notifier, NotifyConfig, enqueue

SECRET_ENV = "XMFAX_TEST_EGRESS_SECRET"


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "egress-secret")


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("ip, what", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"), ("0.0.0.0", "unspecified"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"), ("100.64.0.1", "not public"), ("192.0.2.7", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::1", "loopback"), ("64:ff9b::a00:1", "private"),
])
def test_egress_refused_addresses(ip, what):
    problem = address_problem(ip)
    assert problem is not None and what in problem, problem


@pytest.mark.parametrize("ip", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_egress_public_addresses(ip):
    assert address_problem(ip) is None


def test_egress_webhook_allow_patterns():
    p = Policy(["https://hooks.example.com/fax", "*.partner.example", "api.example.net"])
    ok = ["https://hooks.example.com/fax", "https://hooks.example.com/fax/in?x=1", "https://HOOKS.example.com:443/fax",
          "https://a.partner.example/x", "http://a.b.partner.example:8080/", "https://api.example.net/anything"]
    for url in ok:
        assert p.webhook_problem(url) is None, url
    refused = ["https://hooks.example.com/faxes", "http://hooks.example.com/fax", "https://hooks.example.com:8443/fax",
               "https://partner.example/", "https://evilpartner.example/", "https://hooks.example.com.evil.net/fax",
               "https://hooks.example.com@evil.net/fax", "https://api.example.net.evil/", "ftp://api.example.net/",
               "https://evil.net/?u=https://hooks.example.com/fax"]
    for url in refused:
        assert p.webhook_problem(url), url
    assert "webhook_allow is empty" in Policy([]).webhook_problem("https://hooks.example.com/fax")
    # an allowed host given as a private IP literal: refused unless webhook_allow_private
    assert "private" in Policy(["10.0.0.5"]).webhook_problem("http://10.0.0.5/hook")
    assert Policy(["10.0.0.5"], webhook_allow_private=True).webhook_problem("http://10.0.0.5/hook") is None


def test_egress_email_allow_patterns():
    assert Policy([]).email_problem("anyone@anywhere.example") is None          # absent: any address
    p = Policy([], email_allow=["example.com", "*.example.org", "boss@other.example"])
    for addr in ("a@example.com", "a@EXAMPLE.com", "b@mail.example.org", "Boss@other.example"):
        assert p.email_problem(addr) is None, addr
    for addr in ("a@sub.example.com", "a@example.org", "x@other.example", "a@example.com.evil"):
        assert "email_allow" in p.email_problem(addr), addr
    assert "email_allow is []" in Policy([], email_allow=[]).email_problem("a@example.com")


def test_egress_config_keys_and_errors():
    cfg = NotifyConfig.from_dict({"webhook_allow": ["https://h.example/x", "*.example.net"],
                                  "webhook_allow_private": True, "email_allow": ["example.com"]})
    assert cfg.policy() == Policy(["https://h.example/x", "*.example.net"], True, ["example.com"])
    assert NotifyConfig().policy() == Policy([], False, None)
    for bad, where in [({"webhook_allow": "h.example"}, "webhook_allow"), ({"webhook_allow": ["ex*ample.com"]}, "ex*"),
                       ({"webhook_allow": ["https://h.example/?q=1"]}, "query"),
                       ({"webhook_allow": ["ftp://h.example/"]}, "http"), ({"webhook_allow_private": "yes"}, "true"),
                       ({"email_allow": ["@example.com"]}, "whole address"), ({"email_allow": [3]}, "domain")]:
        with pytest.raises(ConfigError, match="notify") as info:
            NotifyConfig.from_dict(bad)
        assert where in str(info.value), (bad, str(info.value))


def test_egress_pin_resolves_once_and_checks_every_address():
    calls = []

    async def resolver(answers):
        async def resolve(host, port):
            calls.append((host, port))
            return answers
        return resolve

    async def go():
        # a public answer: the call is made to that address, the name stays in Host and SNI
        (t,) = await pin("https://hooks.example.com/fax?x=1", allow_private=False,
                         resolve=await resolver(["93.184.216.34"]))
        assert (t.url, t.headers, t.extensions) == ("https://93.184.216.34/fax?x=1", {"Host": "hooks.example.com"},
                                                    {"sni_hostname": "hooks.example.com"})
        # one private address in the answer refuses the whole name
        with pytest.raises(EgressRefused, match="10.0.0.1 is a private address"):
            await pin("http://hooks.example.com:8080/", allow_private=False,
                      resolve=await resolver(["93.184.216.34", "10.0.0.1"]))
        both = await pin("http://hooks.example.com:8080/", allow_private=True,
                         resolve=await resolver(["10.0.0.1", "::1"]))
        assert [p.url for p in both] == ["http://10.0.0.1:8080/", "http://[::1]:8080/"]
        assert both[1].headers == {"Host": "hooks.example.com:8080"} and both[1].extensions == {}
    run(go())
    assert calls == [("hooks.example.com", 443), ("hooks.example.com", 8080), ("hooks.example.com", 8080)]


# -- delivery through real servers -------------------------------------------------------

def _service(store, data_dir, **notify):
    return MiniService(store, data_dir, {"notify": {"retry_delays": [30], "max_attempts": 2,
                                                    "webhook_secret_env": SECRET_ENV, **notify}})


def test_egress_name_resolving_to_loopback_is_refused_at_delivery(store, data_dir):
    with Hook([200]) as hook:
        url = f"http://localhost:{hook.port}/hook"
        service = _service(store, data_dir, webhook_allow=["localhost"])
        fax_id = make_fax(store, direction="out", status="sent")
        run(enqueue(service, fax_id, [{"type": "webhook", "url": url}]))
        run(Notifier(service).run_once())
        assert hook.requests == []
    (row,) = store.notifications(fax_id)
    assert row["status"] == "failed" and row["attempts"] == 1          # permanent: no retry
    assert row["last_error"].startswith(f"webhook {url}: refused: localhost resolves to ")
    assert "loopback address" in row["last_error"] and "webhook_allow_private is off" in row["last_error"]
    assert store.get_fax(fax_id)["notify_status"] == "failed"


def test_egress_allowed_loopback_goes_to_the_checked_address_with_the_name(store, data_dir):
    with Hook([200]) as hook:
        url = f"http://localhost:{hook.port}/hook"
        service = _service(store, data_dir, webhook_allow=["localhost"], webhook_allow_private=True)
        fax_id = make_fax(store, direction="out", status="sent")
        run(enqueue(service, fax_id, [{"type": "webhook", "url": url}]))
        run(Notifier(service).run_once())
        (req,) = hook.wait(1)
    assert req["headers"]["Host"] == f"localhost:{hook.port}" and req["path"] == "/hook"
    assert store.notifications(fax_id)[0]["status"] == "delivered"


def test_egress_config_changed_after_submit_is_applied_at_delivery(store, data_dir):
    with Hook([200]) as hook:
        service = _service(store, data_dir, webhook_allow=["other.example"], webhook_allow_private=True)
        fax_id = make_fax(store, direction="out", status="sent")
        run(enqueue(service, fax_id, [{"type": "webhook", "url": hook.url}]))
        run(Notifier(service).run_once())
        assert hook.requests == []
    assert "not in this service's [notify] webhook_allow" in store.notifications(fax_id)[0]["last_error"]


def test_egress_configured_webhook_is_not_bound(store, data_dir):
    """A destination the admin configured (it has a name) may be internal."""
    with Hook([200]) as hook:
        service = _service(store, data_dir)                       # webhook_allow empty, private off
        fax_id = make_fax(store, direction="out", status="sent")
        run(enqueue(service, fax_id, [{"type": "webhook", "name": "crm", "url": hook.url}]))
        run(Notifier(service).run_once())
        hook.wait(1)
    assert store.notifications(fax_id)[0]["status"] == "delivered"


def _cert(folder, name: str):
    """A self-signed certificate for the DNS name only (no IP address in it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    crt, pem = folder / "hook.crt", folder / "hook.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_egress_https_pinned_address_keeps_sni_and_certificate_name(store, data_dir, tmp_path, monkeypatch):
    """``hooks.test`` does not exist in DNS: the test resolves it (the one replaced part: a
    test cannot own a DNS name) to 127.0.0.1. The real TLS server sees the SNI
    ``hooks.test``, the client checks the certificate (which names hooks.test only, not
    127.0.0.1) against the name, and the resolver is asked once."""
    crt, pem = _cert(tmp_path / "tls", "hooks.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(crt, pem)
    sni: list = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)
    client_ctx = ssl.create_default_context(cafile=str(crt))
    monkeypatch.setattr(destinations, "_TLS", [client_ctx])
    asked = []

    async def resolve(host, port):
        asked.append((host, port))
        return ["127.0.0.1"]

    with Hook([200]) as hook:
        hook.server.socket = server_ctx.wrap_socket(hook.server.socket, server_side=True)
        url = f"https://hooks.test:{hook.port}/in"
        service = _service(store, data_dir, webhook_allow=["hooks.test"], webhook_allow_private=True)
        service.webhook_resolver = resolve
        fax_id = make_fax(store, direction="out", status="sent")
        run(enqueue(service, fax_id, [{"type": "webhook", "url": url}]))
        run(Notifier(service).run_once())
        (req,) = hook.wait(1)
    assert sni == ["hooks.test"] and asked == [("hooks.test", hook.port)]
    assert req["headers"]["Host"] == f"hooks.test:{hook.port}"
    assert store.notifications(fax_id)[0]["status"] == "delivered"
    # the same call by address alone fails the certificate check: the name is what was verified
    fax2 = make_fax(store, direction="out", status="sent")
    with Hook([200]) as hook2:
        hook2.server.socket = server_ctx.wrap_socket(hook2.server.socket, server_side=True)
        service = _service(store, data_dir, webhook_allow=["127.0.0.1"], webhook_allow_private=True)
        run(enqueue(service, fax2, [{"type": "webhook", "url": f"https://127.0.0.1:{hook2.port}/in"}]))
        run(Notifier(service).run_once())
        assert hook2.requests == []
    assert "CERTIFICATE_VERIFY_FAILED" in store.notifications(fax2)[0]["last_error"]


def test_egress_request_destinations():
    assert Policy([]).destination_problem("front-desk") is None                  # absent: any configured
    p = NotifyConfig.from_dict({"request_destinations": ["crm", "archive"]}).policy()
    assert p.destination_problem("crm") is None
    assert p.destination_problem("front-desk") == ("destination 'front-desk' may not be named in a request "
                                                   "([notify] request_destinations)")
    assert NotifyConfig.from_dict({"request_destinations": []}).policy().destination_problem("crm")
    with pytest.raises(ConfigError, match="request_destinations"):
        NotifyConfig.from_dict({"request_destinations": "crm"})
