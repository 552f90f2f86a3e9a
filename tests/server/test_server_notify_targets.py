"""The destinations against real far ends: email through a real SMTP server (aiosmtpd,
STARTTLS with a certificate made here, AUTH), the attachment opened (PDF with pypdfium2,
TIFF-F with libtiff's tiffinfo and xmfax); folder (atomic, never overwriting, hostile
names, failures); printer through a real CUPS scheduler (cupsd in a temp dir) and lp."""
from __future__ import annotations

import asyncio
import email.policy
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from mailkit import SmtpServer, make_cert
from notifykit import MiniService, fax_pages, make_fax
from xmfax.server import destinations
from xmfax.server.destinations import DeliveryError, deliver, safe_file_name, write_new_file
from xmfax.server.notify import Notifier, enqueue


def run(coro):
    return asyncio.run(coro)


# -- email -----------------------------------------------------------------------------

def _smtp_service(store, data_dir, srv, cert, monkeypatch):
    monkeypatch.setenv("XMFAX_TEST_SMTP_PW", "pw-relay")
    return MiniService(store, data_dir, {
        "smtp": {"host": "127.0.0.1", "port": srv.port, "starttls": "require", "ca_file": str(cert.cert),
                 "username": "relay", "password_env": "XMFAX_TEST_SMTP_PW", "from": "fax@xmfax.example"},
        "notify": {"retry_delays": [5]}}, public_url="https://fax.example")


def test_notify_email_pdf_over_starttls(store, data_dir, tmp_path, monkeypatch):
    import pypdfium2

    cert = make_cert(tmp_path / "tls")
    with SmtpServer(tls=cert, users={"relay": "pw-relay"}) as srv:
        service = _smtp_service(store, data_dir, srv, cert, monkeypatch)
        fax_id = make_fax(store, pages=3, remote_id="ACME <Sales>\r\nBcc: evil@x")
        run(enqueue(service, fax_id, [{
            "type": "email", "name": "ops", "to": ["ops@example.com", "boss@example.com"], "format": "pdf",
            "subject": "Fax {{ id }} from {{ remote_id }}: {{ pages }} pages",
            "body": "Caller {{ ani }} dialled {{ dnis }}; CSID {{ csid }}.\n{{ link }}\n",
            "headers": {"Auto-Submitted": "auto-generated", "In-Reply-To": "<{{ x }}@evil>\r\nBcc: y@x"}}]))
        run(Notifier(service).run_once())
        (mail_from, rcpts, msg), = srv.wait(1)
        session = srv.sessions[0]
    assert session == {"tls": True, "auth": "relay"}
    assert mail_from == "fax@xmfax.example" and sorted(rcpts) == ["boss@example.com", "ops@example.com"]
    # the caller-controlled CSID cannot add a header: its CR/LF became spaces
    assert msg["Subject"] == f"Fax {fax_id} from ACME <Sales>  Bcc: evil@x: 3 pages"
    assert msg["Bcc"] is None and msg["X-XMFax-Transaction"] == fax_id
    # header values are literal (they may come from a mail's sender), CR/LF flattened
    assert msg["Auto-Submitted"] == "auto-generated" and msg["In-Reply-To"] == "<{{ x }}@evil>  Bcc: y@x"
    body = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body == f"Caller +15557654321 dialled +15551230000; CSID +15551230000.\nhttps://fax.example/faxes/{fax_id}\n"
    (part,) = list(msg.iter_attachments())
    assert part.get_content_type() == "application/pdf" and part.get_filename() == f"fax-{fax_id}.pdf"
    pdf = pypdfium2.PdfDocument(part.get_content())
    assert len(pdf) == 3
    # the pages are the fax's pages: rendered back at 204 x 196 dpi they match the source
    src = fax_pages(3)
    for i in range(3):
        page = pdf[i]
        w_in, h_in = page.get_size()[0] / 72, page.get_size()[1] / 72
        assert abs(w_in - src[i].width / 204) < 0.02 and abs(h_in - src[i].rows / 196) < 0.02
    row = store.notifications(fax_id)[0]
    assert row["status"] == "delivered"
    assert store.get_fax(fax_id)["notify_status"] == "delivered"


def test_notify_email_tiff_f_for_t37(store, data_dir, tmp_path, monkeypatch):
    from xmfax.document import load

    cert = make_cert(tmp_path / "tls")
    with SmtpServer(tls=cert, users={"relay": "pw-relay"}) as srv:
        service = _smtp_service(store, data_dir, srv, cert, monkeypatch)
        fax_id = make_fax(store, pages=2)
        run(enqueue(service, fax_id, [{"type": "email", "to": "inbox@example.com", "format": "tiff"}]))
        run(Notifier(service).run_once())
        (_, _, msg), = srv.wait(1)
    assert "Fax from +1 555 765 4321 to +15551230000: 2 page(s)" == msg["Subject"]     # the default subject
    (part,) = list(msg.iter_attachments())
    # RFC 3949 / RFC 3302: image/tiff; application=faxbw
    assert part.get_content_type() == "image/tiff" and part.get_param("application") == "faxbw"
    data = part.get_content()
    tif = tmp_path / "got.tif"
    tif.write_bytes(data)
    if shutil.which("tiffinfo"):
        info = subprocess.run(["tiffinfo", str(tif)], capture_output=True, text=True, timeout=30).stdout
        assert info.count("Compression Scheme: CCITT Group 3") == 2       # MH: profile S
        assert info.count("Image Width: 1728") == 2
    got, src = load(data), fax_pages(2)
    assert len(got) == 2
    for a, b in zip(got, src):
        assert a.image.shape == b.image.shape and np.array_equal(a.image, b.image)


def test_notify_email_errors_temporary_and_permanent(store, data_dir, tmp_path, monkeypatch):
    cert = make_cert(tmp_path / "tls")
    with SmtpServer(tls=cert, users={"relay": "pw-relay"}) as srv:
        service = _smtp_service(store, data_dir, srv, cert, monkeypatch)
        srv.replies["busy@example.com"] = "451 4.3.0 try later"
        srv.replies["nobody@example.com"] = "550 5.1.1 no such user"
        busy, gone = make_fax(store), make_fax(store)
        notifier = Notifier(service)
        run(enqueue(service, busy, [{"type": "email", "to": "busy@example.com"}]))
        run(enqueue(service, gone, [{"type": "email", "to": "nobody@example.com"}]))
        run(notifier.run_once())
    b, g = store.notifications(busy)[0], store.notifications(gone)[0]
    assert b["status"] == "pending" and "451" in b["last_error"]
    assert g["status"] == "failed" and "550" in g["last_error"]
    # no image: a permanent error, said so
    bare = make_fax(store, image=False)
    with pytest.raises(DeliveryError, match="no image") as info:
        run(deliver(service, store.get_fax(bare), {"type": "email", "to": "x@example.com"}, 1))
    assert info.value.permanent
    # a bad template is permanent too
    with pytest.raises(DeliveryError, match="subject template") as info:
        run(deliver(service, store.get_fax(bare), {"type": "email", "to": "x@example.com", "format": "none",
                                                   "subject": "{{ ''.__class__.__mro__ }}"}, 1))
    assert info.value.permanent


# -- folder ------------------------------------------------------------------------------

def test_notify_folder_atomic_no_overwrite_hostile_names(store, data_dir, tmp_path):
    out = tmp_path / "inbox"
    out.mkdir()
    service = MiniService(store, data_dir)
    fax_id = make_fax(store, remote_id="../../etc/passwd\x07\n", pages=2)
    dest = {"type": "folder", "path": str(out), "format": "tiff", "name_template": "{{ remote_id }}"}
    fax = store.get_fax(fax_id)
    notes = [run(deliver(service, fax, dest, 1)) for _ in range(3)]
    names = [n.split(" ", 1)[1].rpartition("/")[2] for n in notes]
    assert names == ["____etc_passwd__.tif", "____etc_passwd__-1.tif", "____etc_passwd__-2.tif"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert notes[0] == f"wrote {out / '____etc_passwd__.tif'}"
    assert not list(tmp_path.glob("etc*")) and not any(n.startswith(".") for n in names)   # no temp left
    from xmfax.document import load

    assert len(load((out / names[0]).read_bytes())) == 2
    # the default name: time, direction, number, id; PDF by default
    run(deliver(service, fax, {"type": "folder", "path": str(out)}, 1))
    (pdf,) = [p for p in out.iterdir() if p.suffix == ".pdf"]
    assert pdf.name.endswith(f"-in-+15551230000-{fax_id}.pdf") and pdf.read_bytes().startswith(b"%PDF")
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600


@pytest.mark.parametrize("text, want", [("a/b", "a_b"), ("..", "_"), ("../..", "___"), (".", "fb"), (".hidden", "hidden"),
                                        ("x\ty\r\n", "x_y__"), ("", "fb"), ("-rf", "rf"), ("é" * 200, "é" * 90),
                                        ("a\\b", "a_b"), ("n\x00ul", "n_ul"), ("ok-1.pdf", "ok-1.pdf")])
def test_notify_safe_file_name(text, want):
    got = safe_file_name(text, "fb")
    assert got == want and "/" not in got and ".." not in got


def test_notify_folder_failures_are_told(store, data_dir, tmp_path):
    service = MiniService(store, data_dir, {"notify": {"retry_delays": [1]}})
    fax_id = make_fax(store)
    missing = tmp_path / "not-mounted"
    run(enqueue(service, fax_id, [{"type": "folder", "path": str(missing)}]))
    notifier = Notifier(service)
    run(notifier.run_once())
    row = store.notifications(fax_id)[0]
    assert row["status"] == "pending" and row["last_error"] == f"folder {missing} does not exist (or is not a folder)"
    # a name taken 10000 times over is unlikely; a path through a file is an OS error, retried
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DeliveryError, match="Not a directory") as info:
        run(deliver(service, store.get_fax(fax_id), {"type": "folder", "path": str(blocker / "sub"),
                                                     "create": True}, 1))
    assert not info.value.permanent
    # the folder appears (a share mounted again): the retry delivers
    missing.mkdir()
    run(notifier.run_once(time.time() + 2))
    assert store.notifications(fax_id)[0]["status"] == "delivered"
    assert len(list(missing.iterdir())) == 1


def test_notify_folder_write_failure_leaves_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "f"
    folder.mkdir()

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        write_new_file(folder, "x.pdf", b"data")
    assert list(folder.iterdir()) == []


# -- printer -----------------------------------------------------------------------------

BACKEND = """#!/bin/sh
# a CUPS backend (cups-backend(7)): no arguments lists the device; else the job -> the folder
if [ $# -eq 0 ]; then echo 'file capture "Unknown" "capture to a folder"'; exit 0; fi
dir=${DEVICE_URI#capture:}
if [ $# -ge 6 ]; then cat "$6"; else cat; fi > "$dir/.job-$1" && mv "$dir/.job-$1" "$dir/job-$1.prn"
echo "$3" > "$dir/job-$1.title"
"""


class Cups:
    """A real CUPS scheduler (Debian's cupsd) in a temp dir, one raw queue "faxprn"."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="xmfax-cups-"))
        self.dir.chmod(0o755)                      # the backend runs as user lp
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = f"127.0.0.1:{self.port}"
        self.out = self.dir / "out"
        for sub in ("root", "spool", "tmp", "cache", "state", "log", "bin/backend", "out"):
            (self.dir / sub).mkdir(parents=True)
        for sub in ("tmp", "out"):
            (self.dir / sub).chmod(0o777)
        for sub in ("daemon", "notifier", "mime"):
            if Path("/usr/lib/cups", sub).exists():
                (self.dir / "bin" / sub).symlink_to(Path("/usr/lib/cups", sub))
        backend = self.dir / "bin/backend/capture"
        backend.write_text(BACKEND)
        backend.chmod(0o755)
        d = self.dir
        (d / "root/cupsd.conf").write_text(
            f"Listen 127.0.0.1:{self.port}\nLogLevel info\nWebInterface No\nBrowsing No\n"
            "DefaultAuthType None\n<Location />\n  Order allow,deny\n  Allow all\n</Location>\n")
        (d / "root/cups-files.conf").write_text(
            f"ServerRoot {d}/root\nRequestRoot {d}/spool\nTempDir {d}/tmp\nCacheDir {d}/cache\n"
            f"StateDir {d}/state\nServerBin {d}/bin\nDataDir /usr/share/cups\nAccessLog {d}/log/access_log\n"
            f"ErrorLog {d}/log/error_log\nPageLog {d}/log/page_log\nPrintcap {d}/printcap\nSandboxing Relaxed\n")
        (d / "root/printers.conf").write_text(
            f"<Printer faxprn>\nInfo xmfax test\nDeviceURI capture:{self.out}\nState Idle\nAccepting Yes\n"
            "Shared No\n</Printer>\n")
        self.proc = subprocess.Popen(["/usr/sbin/cupsd", "-f", "-c", str(d / "root/cupsd.conf"),
                                      "-s", str(d / "root/cups-files.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            r = subprocess.run(["lpstat", "-h", self.server, "-p", "faxprn"], capture_output=True, text=True)
            if "faxprn" in r.stdout:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("cupsd exited: " + (d / "log/error_log").read_text(errors="replace")[-1000:])
            time.sleep(0.1)
        else:
            raise RuntimeError("cupsd did not answer")

    def jobs(self, count: int, timeout: float = 15) -> list[Path]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = sorted(self.out.glob("job-*.prn"))
            if len(got) >= count:
                return got
            time.sleep(0.1)
        raise AssertionError(f"{len(list(self.out.glob('job-*.prn')))} of {count} print jobs arrived")

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cups():
    if not (os.path.exists("/usr/sbin/cupsd") and shutil.which("lp") and shutil.which("lpstat")):
        pytest.skip("CUPS scheduler or client absent (Debian cups-daemon, cups-client; scripts/install.sh)")
    c = Cups()
    try:
        yield c
    finally:
        c.close()


@pytest.mark.interop
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_notify_printer_through_cups(store, data_dir, cups):
    import pypdfium2

    service = MiniService(store, data_dir, {"notify": {"retry_delays": [1]}})
    fax_id = make_fax(store, pages=2, remote_id="Acme\nSales")
    notifier = Notifier(service)
    run(enqueue(service, fax_id, [{"type": "printer", "printer": "faxprn", "server": cups.server,
                                   "title": "fax {{ id }} from {{ remote_id }}"}]))
    run(notifier.run_once())
    row = store.notifications(fax_id)[0]
    assert row["status"] == "delivered", row["last_error"]
    (job,) = cups.jobs(1)
    assert len(pypdfium2.PdfDocument(job.read_bytes())) == 2
    assert job.with_suffix(".title").read_text().strip() == f"fax {fax_id} from Acme Sales"
    note = [e["message"] for e in store.events(fax_id) if e["kind"] == "notify"][-1]
    assert "request id is faxprn-" in note
    # a queue that does not exist: lp fails, the row is retried (not delivered)
    other = make_fax(store)
    run(enqueue(service, other, [{"type": "printer", "printer": "nosuch", "server": cups.server}]))
    run(notifier.run_once())
    row = store.notifications(other)[0]
    assert row["status"] == "pending" and "does not exist" in row["last_error"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_notify_printer_without_lp_is_permanent(store, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    service = MiniService(store, data_dir)
    fax_id = make_fax(store)
    run(enqueue(service, fax_id, [{"type": "printer", "printer": "faxprn"}]))
    run(Notifier(service).run_once())
    row = store.notifications(fax_id)[0]
    assert row["status"] == "failed"
    assert row["last_error"] == "printer: CUPS' lp is not installed (Debian package cups-client)"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_notify_printer_lp_hanging_is_killed(store, data_dir, tmp_path, monkeypatch):
    # a stand-in lp that never ends (a scheduler that hangs cannot be made on purpose)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lp").write_text(f"#!/bin/sh\necho $$ > {tmp_path}/lp.pid\nexec sleep 30\n")
    (bin_dir / "lp").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    service = MiniService(store, data_dir)
    fax = store.get_fax(make_fax(store))
    with pytest.raises(DeliveryError, match="lp did not finish in 0.5 s") as info:
        run(deliver(service, fax, {"type": "printer", "printer": "p", "timeout": 0.5}, 1))
    assert not info.value.permanent
    pid = int((tmp_path / "lp.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_notify_check_destination_messages():
    check = destinations.check_destination
    assert check({"type": "email", "to": "a@b.example"}) is None
    assert check({"type": "email", "to": "a@b.example", "colour": 1}) == "email destination: unknown key(s) colour"
    assert check({"type": "email", "to": ["not an address"]}) == "email destination: 'not an address' is not an address"
    assert check({"type": "folder", "path": "/x", "format": "png"}) == "format 'png': one of pdf, tiff"
    assert check({"type": "printer", "printer": "a b"}) == "printer destination: 'printer' (a CUPS queue name) is required"
    assert check({"type": "printer", "printer": "p", "options": {"a;b": 1}}).startswith("printer destination: 'options'")
    assert check({"type": "webhook", "url": "ftp://x"}) == "webhook destination: 'url' (http:// or https://) is required"
    assert check({"type": "webhook", "url": "http://x", "max_attempts": 0}) == "max_attempts: a whole number >= 1"
    assert check({"type": "email", "to": "a@b.example", "subject": "{% if %}"}).startswith("subject: template error")
    assert check({"type": "email", "to": "a@b.example", "headers": {"In-Reply-To": "<x@y>"}}) is None
    for bad in ({"Content-Type": "text/html"}, {"Bcc": "x@y"}, {"Bad Name": "v"}, {"X-A": 1}):
        assert check({"type": "email", "to": "a@b.example", "headers": bad}).startswith("email destination: header")
