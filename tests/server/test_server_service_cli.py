"""`xmfax serve`, `xmfax token`, `xmfax cdr` as real subprocesses, and the Service spine
(owner: H7 service)."""
from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from serve_proc import Serve, xmfax
from xmfax.server.config import ConfigError, WebConfig, from_dict, load
from xmfax.server.service import Service, StartError, redact_url


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class _Run:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys):
    from xmfax.cli import main

    def run(*args: str) -> _Run:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:                    # argparse usage errors
            code = exc.code
        out = capsys.readouterr()
        return _Run(code, out.out, out.err)
    return run


# --- config -----------------------------------------------------------------------------

def test_config_defaults_and_flags(tmp_path):
    cfg = load(None, data=tmp_path / "d", http="127.0.0.1:0", lines=["t38://127.0.0.1:6000"],
               listen=["sip://127.0.0.1:5070"])
    assert cfg.data_dir == tmp_path / "d"
    assert cfg.http_host_port() == ("127.0.0.1", 0)
    assert cfg.db_kind == "sqlite" and cfg.db_url == str(tmp_path / "d" / "xmfax.db")
    assert cfg.section("outbound") == {"lines": ["t38://127.0.0.1:6000"]}
    assert cfg.section("inbound") == {"listen": ["sip://127.0.0.1:5070"]}
    assert cfg.section("smtp") == {}
    assert cfg.node and cfg.node == load(None, data=tmp_path / "d").node       # stable per data folder
    assert cfg.node != load(None, data=tmp_path / "e").node


def test_config_file_then_flags_add_lines(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('http = "127.0.0.1:9"\n[outbound]\nlines = ["sip:{number}@a"]\n'
                 '[[numbers]]\nnumber = "+15550100"\ncsid = "+1 555 0100"\n')
    cfg = load(f, lines=["t38://127.0.0.1:1"], http="127.0.0.1:0")
    assert cfg.http == "127.0.0.1:0"                                   # the flag wins
    assert cfg.section("outbound")["lines"] == ["sip:{number}@a", "t38://127.0.0.1:1"]
    assert cfg.numbers == [{"number": "+15550100", "csid": "+1 555 0100"}]


@pytest.mark.parametrize("text, words", [
    ('colour = "blue"\n', ["unknown key 'colour'", "x.toml"]),
    ("[smtpd]\nhost = 'a'\n", ["unknown key 'smtpd'"]),
    ("http = 8080\n", ["http: must be a string"]),
    ("http = 'nohost'\n", ["http", "not HOST:PORT"]),
    ("[[numbers]]\ncsid = 'x'\n", ["[[numbers]] #1 number: missing"]),
    ("[[rules]]\nkind = 'magic'\n", ["[[rules]] #1 kind", "magic"]),
    ("[[users]]\nname = 'a'\nphone = '1'\n", ["[[users]] #1 phone: unknown key"]),
    ("smtp = 'x'\n", ["[smtp]: must be a table"]),
    ("database = 'mysql://a/b'\n", ["database", "mysql"]),
    ("not toml at all [\n", ["not valid TOML"]),
    ("[[numbers]]\nnumber = '+15550100'\ncsid = 'ACME <FAX>'\n", ["[[numbers]] #1 csid", "Table 3/T.30"]),
    ("[[numbers]]\nnumber = '+15550100'\nretention_days = 3\n", ["retention_days: 3 days; 0 (zero retention) or at least 7"]),
    ("[[destinations]]\nname = 'in'\ntype = 'folder'\ncolour = 'red'\n", ["[[destinations]] #1 (in)", "colour"]),
    ("[[destinations]]\nname = 'in'\ntype = 'pigeon'\n", ["[[destinations]] #1 (in)", "pigeon"]),
])
def test_config_errors_name_the_key(tmp_path, text, words):
    f = tmp_path / "x.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(f)
    for w in words:
        assert w in str(e.value)


def test_web_config():
    assert WebConfig.from_dict({}).enabled
    assert WebConfig.from_dict({"session_hours": 1}).session_hours == 1.0
    with pytest.raises(ConfigError, match=r"\[web\] colour"):
        WebConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="session_hours"):
        WebConfig.from_dict({"session_hours": 0})


def test_redact_url():
    assert redact_url("postgresql://fax:s3cret@db:5432/x") == "postgresql://fax:***@db:5432/x"
    assert redact_url("postgresql://fax@db/x") == "postgresql://fax@db/x"
    assert redact_url("/tmp/a.db") == "/tmp/a.db"


# --- the Service in process -------------------------------------------------------------

def test_service_seeds_directory_and_wakes(tmp_path, store_url):
    raw = {
        "database": store_url, "http": "127.0.0.1:0",
        "destinations": [{"name": "inbox", "type": "folder", "path": str(tmp_path / "in")}],
        "users": [{"name": "alice", "email": "alice@example.com", "destinations": ["inbox"]}],
        "numbers": [{"number": "+15550100", "users": ["alice"], "csid": "+1 555 0100"}],
        "rules": [{"name": "sales", "kind": "direct", "dnis": "+1555*", "destinations": ["inbox"],
                   "continue": True}, {"kind": "default", "destinations": ["inbox"]}],
    }
    cfg = from_dict(raw)
    cfg.data_dir = tmp_path / "data"
    cfg.node = "n1"

    async def main():
        svc = Service(cfg)
        await svc.start()
        try:
            assert [type(c).__name__ for c in svc.components] == [
                "Notifier", "Retention", "Outbound", "Inbound", "MailGateway", "HttpServer"]
            store = svc.store
            assert store.get_number("+15550100")["csid"] == "+1 555 0100"
            assert store.get_user("alice")["destinations"] == ["inbox"]
            assert store.get_destination("inbox")["params"] == {"path": str(tmp_path / "in")}
            rules = store.list_rules()
            assert [r["kind"] for r in rules] == ["direct", "default"]
            assert rules[0]["continue"] is True and rules[0]["dnis"] == "+1555*"
            # wake() from the loop and from another thread both wake a waiter
            # (on a name no component waits on: a component would take the wake-up)
            assert await svc.wait("probe", 0.01) is False
            svc.wake("probe")
            assert await svc.wait("probe", 1.0) is True
            await asyncio.to_thread(svc.wake, "probe")
            assert await svc.wait("probe", 1.0) is True
            assert await svc.wait("probe", 0.01) is False                # cleared
            assert svc.http_address is not None and svc.http_address[1] > 0
        finally:
            await svc.stop()
        assert svc.store is None

    asyncio.run(main())
    # config wins for what it names at the next start; what it does not name stays
    cfg2 = from_dict({**raw, "numbers": [{"number": "+15550100", "csid": "+1 555 0199"}], "rules": []})
    cfg2.data_dir, cfg2.node = tmp_path / "data", "n1"

    async def again():
        svc = Service(cfg2)
        await svc.start()
        try:
            assert svc.store.get_number("+15550100")["csid"] == "+1 555 0199"
            assert [r["kind"] for r in svc.store.list_rules()] == ["direct", "default"]
        finally:
            await svc.stop()

    asyncio.run(again())


@pytest.mark.interop
def test_serve_on_postgresql(tmp_path, new_pg_database):
    url = new_pg_database()
    (tmp_path / "s.toml").write_text("[web]\nenabled = false\n")
    with Serve(tmp_path, "--database", url, "--http", "127.0.0.1:0", "--node", "pg-a", "--config", "s.toml",
               "--listen", "t38://127.0.0.1:0#+15551230001") as node:
        assert node.db == "postgresql" and node.node == "pg-a"
        assert " fax t38://127.0.0.1:" in node.extra, node.ready_line            # what else it listens on
        assert ":0" not in node.extra.split("fax ", 1)[1].split()[0]              # the real port
        assert _get(node.url + "/login")[0] == 404                              # [web] enabled = false
        status, body = _get(node.url + "/restservice/transactions/0123456789abcdef")
        assert status == 401 and "unauthorized" in body                         # the REST API answers
    assert node.returncode == 0, node.stderr
    assert not (tmp_path / "xmfax-data" / "xmfax.db").exists()          # nothing in SQLite


def test_a_component_that_cannot_load_stops_the_start(tmp_path, monkeypatch):
    from xmfax.server import service as service_module
    monkeypatch.setattr(service_module, "COMPONENTS", [*service_module.COMPONENTS, ("no_such_part", "X")])
    cfg = load(None, data=tmp_path / "d", http="127.0.0.1:0")
    with pytest.raises(StartError, match="component no_such_part cannot be loaded"):
        asyncio.run(Service(cfg).start())


def test_bad_key_is_a_start_error(tmp_path):
    cfg = load(None, data=tmp_path / "d")
    cfg.encryption_key = base64.b64encode(b"short").decode()
    with pytest.raises(StartError, match="encryption_key: 5 bytes, need 32"):
        asyncio.run(Service(cfg).start())
    cfg.encryption_key = "%%%"
    with pytest.raises(StartError, match="not base64"):
        asyncio.run(Service(cfg).start())


# --- xmfax serve as a subprocess -----------------------------------------------------------

def test_serve_no_config_runs_in_cwd_stops_on_signals_and_guards_its_node(tmp_path):
    node = Serve(tmp_path, "--http", "127.0.0.1:0").start()
    data = tmp_path / "xmfax-data"
    try:
        assert node.url, node.stderr
        assert node.db == "sqlite"
        assert (data / "xmfax.db").exists()
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "key").stat().st_mode) == 0o600
        key = (data / "key").read_text()
        assert len(base64.b64decode(key)) == 32
        status, body = _get(node.url + "/login")
        assert status == 200 and "token" in body
        # a second process under the same node name on this folder is refused; another name runs
        twin = Serve(tmp_path, "--http", "127.0.0.1:0").start()
        assert twin.returncode == 1 and f"node {node.node} already runs" in twin.stderr, twin.stderr
        with Serve(tmp_path, "--http", "127.0.0.1:0", "--node", "other") as other:
            assert other.node == "other"
    finally:
        rc = node.stop(signal.SIGTERM)
    assert rc == 0, node.stderr
    assert "Traceback" not in node.stderr
    # the next start keeps the node name and the key; SIGINT stops it as well
    with Serve(tmp_path, "--http", "127.0.0.1:0") as again:
        assert again.node == node.node and (data / "key").read_text() == key
        assert again.stop(signal.SIGINT) == 0, again.stderr


def test_serve_port_taken_exit_1(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli("serve", "--http", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and r.stdout == ""                   # no ready line
    assert r.stderr.strip().splitlines()[-1] == (f"xmfax serve: HTTP cannot listen on 127.0.0.1:{port}: "
                                                 "Address already in use")


def test_serve_bad_config_exit_2(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text("colour = 'blue'\n")
    r = cli("serve", "--config", "bad.toml", "--http", "127.0.0.1:0")
    assert r.returncode == 2
    assert "unknown key 'colour'" in r.stderr and "bad.toml" in r.stderr and "Traceback" not in r.stderr
    r = cli("serve", "--config", "missing.toml")
    assert r.returncode == 2 and "missing.toml does not exist" in r.stderr
    assert not (tmp_path / "xmfax-data").exists()


def test_serve_unwritable_data_dir_exit_3(tmp_path, cli):
    (tmp_path / "file").write_text("not a folder")
    r = cli("serve", "--data", str(tmp_path / "file" / "data"), "--http", "127.0.0.1:0")
    assert r.returncode == 3, r.stderr
    assert "cannot be written" in r.stderr and "Traceback" not in r.stderr


def test_serve_bad_key_and_unreachable_database_exit_1(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.toml").write_text(f'encryption_key = "{base64.b64encode(b"x" * 16).decode()}"\n')
    r = cli("serve", "--config", "k.toml", "--http", "127.0.0.1:0")
    assert r.returncode == 1 and "encryption_key: 16 bytes, need 32" in r.stderr and "Traceback" not in r.stderr
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("serve", "--database", f"postgresql://fax:s3cret@127.0.0.1:{port}/fax", "--http", "127.0.0.1:0")
    assert r.returncode == 1, r.stderr
    assert "cannot be opened" in r.stderr and "s3cret" not in r.stderr and "Traceback" not in r.stderr


# --- tokens and CDRs (the real command line, in this process: no interpreter start each) --


def test_token_create_list_revoke(tmp_path, cli):
    data = str(tmp_path / "d")
    r = cli("token", "create", "--data", data, "--name", "app")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert r.stdout == token + "\n" and len(token) > 30           # the token only
    r2 = cli("token", "create", "--data", data, "--name", "app")
    assert r2.returncode == 1 and "app" in r2.stderr and "Traceback" not in r2.stderr
    ro = cli("token", "create", "--data", data, "--name", "viewer", "--permission", "read").stdout.strip()
    listed = cli("token", "list", "--data", data).stdout
    assert "app\tsend_manage\tactive" in listed and "viewer\tread\tactive" in listed
    assert token not in listed and ro not in listed
    from xmfax.server.store import Store
    key = base64.b64decode((Path(data) / "key").read_text())
    s = Store.open(str(Path(data) / "xmfax.db"), Path(data), key)
    try:
        assert s.verify_token(token)["name"] == "app"
        assert s.verify_token(ro)["permission"] == "read"
    finally:
        s.close()
    assert cli("token", "revoke", "--data", data, "--name", "app").returncode == 0
    assert "app\tsend_manage\trevoked" in cli("token", "list", "--data", data).stdout
    r = cli("token", "revoke", "--data", data, "--name", "app")
    assert r.returncode == 1 and "no active token" in r.stderr


def test_token_create_is_accepted_by_the_rest_api(tmp_path):
    token = xmfax("token", "create", "--data", "xmfax-data", "--name", "app", cwd=tmp_path).stdout.strip()
    with Serve(tmp_path, "--http", "127.0.0.1:0") as node:
        def list_with(tok):
            req = urllib.request.Request(node.url + "/restservice/transactions/0000000000000000",
                                         headers={"XM-Token-Authorization": tok, "Accept": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())
        status, body = list_with(token)
        assert status == 404 and body["errorInfo"]["errorCode"] == "not_found"      # authorised, no such fax
        status, body = list_with("xmt_wrong")
        assert status == 401 and body["errorInfo"]["errorCode"] == "unauthorized"


def test_cdr_csv(tmp_path, cli):
    data = tmp_path / "d"
    assert cli("token", "create", "--data", str(data), "--name", "x").returncode == 0
    from xmfax.server.store import Store
    key = base64.b64decode((data / "key").read_text())
    s = Store.open(str(data / "xmfax.db"), data, key)
    try:
        fid = s.create_fax(direction="out", status="sent", number="+15550100")
        s.add_call(fid, attempt=1, direction="out", line="t38://127.0.0.1:1", started_at=1000.0,
                   ended_at=1010.0, duration=10.0, status="sent", pages=2, node="n1")
        s.add_call(fid, attempt=2, direction="out", line="t38://127.0.0.1:1", started_at=5000.0,
                   ended_at=5001.0, duration=1.0, status="failed", reason="busy", node="n1")
    finally:
        s.close()
    r = cli("cdr", "--data", str(data))
    assert r.returncode == 0, r.stderr
    rows = r.stdout.strip().splitlines()
    assert rows[0].startswith("id,fax_id,attempt") and len(rows) == 3 and fid in rows[1]
    r = cli("cdr", "--data", str(data), "--since", "1970-01-01T00:30:00")    # 1800 s
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 2 and "busy" in r.stdout
    r = cli("cdr", "--data", str(data), "--since", "yesterday")
    assert r.returncode == 2 and "neither epoch seconds nor an ISO date" in r.stderr
