"""`xmfax serve` under load: the REST API's accept rate and the end-to-end fax rate.

Real processes over loopback, nothing mocked:

1. **API accept rate.** One `xmfax serve` node with no outbound line (faxes stay queued,
   so only the API is measured). ``--clients`` httpx clients POST a 1-page PDF with an
   XML control file to /restservice/sendfax as fast as they can, ``--requests`` in all:
   accepted requests per second, and the latency of each request (p50, p99).
2. **End to end.** Node A sends, node B answers: A's line is ``sip:{number}@B`` (T.38
   over SIP, unpaced, ``--calls`` at once), B listens with ``--listen sip://...``. Each
   of ``--faxes`` faxes goes to its own number; it counts once B has it stored and its
   pages, downloaded from B through the API, are pixel for pixel the pages A sent
   (downloaded from A). Faxes per minute from the first POST to the last fax verified,
   and the API's latency meanwhile: the sendfax POSTs, and GETs of a transaction's
   status made all along by a poller.

    python benchmarks/server.py [--quick] [--clients 8] [--requests 400] [--faxes 60] [--calls 4]
                                [--database postgresql://USER@HOST:PORT/DB]

Each node is a fresh data folder in a temporary directory (removed after). With
``--database`` the API node and node A each get a fresh database made on that server
(CREATE DATABASE, dropped after); node B keeps SQLite.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

READY = re.compile(r"^serve: ready on (http://\S+) \(node (\S+), db (\w+)\)")
CONTROL = ("<schedulefax><sender><csid>+1 555 0100</csid><name>bench</name></sender>"
           "<recipient><number>{number}</number></recipient><retries>0</retries></schedulefax>")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_page_pdf() -> bytes:
    """A 1-page A4 letter as PDF (drawn here: text lines and a frame)."""
    from PIL import Image, ImageDraw

    from xmfax.document import save
    from xmfax.page import Page, Resolution

    img = Image.new("1", (1728, 2200), 1)
    draw = ImageDraw.Draw(img)
    draw.rectangle((60, 120, 1668, 2140), outline=0, width=4)
    for i in range(30):
        draw.text((120, 200 + 60 * i), f"line {i + 1}: benchmark letter, the quick brown fox jumps", fill=0)
    out = io.BytesIO()
    save([Page(~np.array(img, dtype=bool), Resolution.FINE)], out, format="pdf")
    return out.getvalue()


class Node:
    """An `xmfax serve` subprocess, up once it printed its ready line."""

    def __init__(self, root: Path, name: str, *args: str, config: str = ""):
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.data = self.dir / "data"
        self.config = self.dir / "serve.toml"
        self.config.write_text(config)
        self.args = ["--data", str(self.data), "--config", str(self.config), "--node", name, *args]
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "Node":
        self.proc = subprocess.Popen([sys.executable, "-m", "xmfax", "serve", "--http", "127.0.0.1:0", *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=self.dir)
        line = self.proc.stdout.readline()
        m = READY.match(line)
        if not m:
            raise RuntimeError(f"xmfax serve did not start: {line!r} (exit {self.proc.poll()})")
        self.url = m.group(1)
        out = subprocess.run([sys.executable, "-m", "xmfax", "token", "create", "--data", str(self.data),
                              "--name", f"bench-{self.dir.name}", "--permission", "admin",   # sees received faxes
                              "--config", str(self.config)],
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"token create failed: {out.stderr}")
        self.token = out.stdout.strip()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def headers(self) -> dict:
        return {"XM-Token-Authorization": self.token, "Accept": "application/json"}


async def post_fax(client: httpx.AsyncClient, node: Node, number: str, pdf: bytes) -> tuple[float, str | None]:
    t = time.perf_counter()
    r = await client.post(f"{node.url}/restservice/sendfax", headers=node.headers,
                          files=[("metadata", ("fax.xml", CONTROL.format(number=number).encode(), "application/xml")),
                                 ("attachments", ("letter.pdf", pdf, "application/pdf"))])
    took = time.perf_counter() - t
    if r.status_code != 200:
        return took, None
    return took, r.json()["successInfo"]["transactionIds"]["transactionId"][0]


class Databases:
    """Fresh PostgreSQL databases on the server of ``url`` (none: SQLite), dropped at the end."""

    def __init__(self, url: str):
        self.url, self.made = url, []

    def new(self) -> str:
        if not self.url:
            return ""
        import psycopg
        import secrets

        name = "xmfax_bench_" + secrets.token_hex(4)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self.made.append(name)
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop(self) -> None:
        if self.made:
            import psycopg
            with psycopg.connect(self.url, autocommit=True) as conn:
                for name in self.made:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# --------------------------------------------------------------------------- 1. accept rate
async def accept_rate(root: Path, clients: int, requests: int, pdf: bytes, database: str) -> dict:
    head = f'database = "{database}"\n' if database else ""
    node = await asyncio.to_thread(Node(root, "api", config=head).start)
    try:
        latencies: list[float] = []
        failed = 0
        numbers = iter(range(requests))

        async def client_loop(client: httpx.AsyncClient) -> None:
            nonlocal failed
            for i in numbers:
                took, tid = await post_fax(client, node, f"+1555200{i:04d}", pdf)
                latencies.append(took)
                failed += tid is None

        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
            await post_fax(client, node, "+15552999999", pdf)            # warm up (imports, first render)
            t0 = time.perf_counter()
            await asyncio.gather(*[client_loop(client) for _ in range(clients)])
            elapsed = time.perf_counter() - t0
        return {"requests": requests, "accepted": requests - failed, "elapsed": elapsed,
                "rate": (requests - failed) / elapsed, "p50": pct(latencies, 50), "p99": pct(latencies, 99)}
    finally:
        await asyncio.to_thread(node.stop)


# --------------------------------------------------------------------------- 2. end to end
async def end_to_end(root: Path, clients: int, faxes: int, calls: int, pdf: bytes, database: str) -> dict:
    from xmfax.document import load

    sip_port = free_port()
    receiver = Node(root, "node-b", "--listen", f"sip://127.0.0.1:{sip_port}",
                    config="[inbound]\nrealtime = false\n")
    head = f'database = "{database}"\n' if database else ""
    sender = Node(root, "node-a", config=(
        f'{head}[outbound]\nrealtime = false\npoll_interval = 0.2\nsip = {{ offer = "t38" }}\n'
        f'lines = [{{ url = "sip:{{number}}@127.0.0.1:{sip_port}", max_calls = {calls} }}]\n'))
    await asyncio.to_thread(receiver.start)
    await asyncio.to_thread(sender.start)
    try:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients + 2)) as client:
            post_lat: list[float] = []
            get_lat: list[float] = []
            tids: dict[str, str] = {}                      # number -> A's transaction id
            numbers = [f"+1555300{i:04d}" for i in range(faxes)]
            todo = iter(numbers)
            done = asyncio.Event()

            async def submitter() -> None:
                for number in todo:
                    took, tid = await post_fax(client, sender, number, pdf)
                    post_lat.append(took)
                    if tid is None:
                        raise RuntimeError(f"sendfax for {number} refused")
                    tids[number] = tid

            async def poller() -> None:              # a client watching its faxes while they go out
                while not done.is_set():
                    if tids:
                        tid = next(iter(tids.values()))
                        t = time.perf_counter()
                        r = await client.get(f"{sender.url}/restservice/transactions/{tid}", headers=sender.headers)
                        get_lat.append(time.perf_counter() - t)
                        r.raise_for_status()
                    await asyncio.sleep(0.05)

            async def received() -> dict[str, dict]:
                r = await client.get(f"{receiver.url}/restservice/transactions",
                                     params={"direction": "in", "limit": 1000}, headers=receiver.headers)
                r.raise_for_status()
                return {t["dnis"]: t for t in r.json()["successInfo"]["transactions"]["transaction"]}

            t0 = time.perf_counter()
            watch = asyncio.create_task(poller())
            await asyncio.gather(*[submitter() for _ in range(clients)])
            deadline = time.monotonic() + max(120.0, faxes * 5.0)
            while True:
                got = await received()
                finished = [t for t in got.values() if t["status"] in ("received", "failed")]
                if len(finished) >= faxes:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(finished)} of {faxes} faxes arrived in time")
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - t0
            done.set()
            await watch
            # verify every fax: B's stored pages == the pages A sent, pixel for pixel
            verified = pages = 0
            for number, tid in tids.items():
                rx = got.get(number)
                if rx is None or rx["status"] != "received":
                    continue
                a = await client.get(f"{sender.url}/restservice/transactions/{tid}/document",
                                     params={"format": "tiff"}, headers=sender.headers)
                b = await client.get(f"{receiver.url}/restservice/transactions/{rx['transactionId']}/document",
                                     params={"format": "tiff"}, headers=receiver.headers)
                if a.status_code != 200 or b.status_code != 200:
                    continue
                sent, came = load(a.content), load(b.content)
                if len(sent) == len(came) and all(x.image.shape == y.image.shape and (x.image == y.image).all()
                                                  for x, y in zip(sent, came)):
                    verified += 1
                    pages += len(came)
            status = await client.get(f"{sender.url}/restservice/transactions",
                                      params={"direction": "out", "limit": 1000}, headers=sender.headers)
            sent_ok = sum(1 for t in status.json()["successInfo"]["transactions"]["transaction"]
                          if t["status"] == "sent")
        return {"faxes": faxes, "sent": sent_ok, "verified": verified, "pages": pages, "elapsed": elapsed,
                "per_minute": verified / elapsed * 60, "post_p50": pct(post_lat, 50), "post_p99": pct(post_lat, 99),
                "get_p50": pct(get_lat, 50), "get_p99": pct(get_lat, 99), "gets": len(get_lat)}
    finally:
        await asyncio.to_thread(sender.stop)
        await asyncio.to_thread(receiver.stop)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run (100 requests, 12 faxes)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--faxes", type=int, default=60)
    ap.add_argument("--calls", type=int, default=4, help="calls at once on node A's line")
    ap.add_argument("--database", default="", help="node A's PostgreSQL URL (default: SQLite)")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.faxes = 100, 12
    pdf = one_page_pdf()
    root = Path(tempfile.mkdtemp(prefix="xmfax-bench-"))
    dbs = Databases(args.database)
    try:
        api = asyncio.run(accept_rate(root, args.clients, args.requests, pdf, dbs.new()))
        e2e = asyncio.run(end_to_end(root, args.clients, args.faxes, args.calls, pdf, dbs.new()))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        dbs.drop()
    db = "postgresql" if args.database else "sqlite"
    print(f"xmfax serve benchmark ({os.cpu_count()} CPUs, db {db}, {args.clients} clients, 1-page PDF, loopback)")
    print(f"{'measure':<52} {'value':>12}")
    print("-" * 65)
    rows = [
        ("sendfax accepted (XML API), requests/s", f"{api['rate']:.1f}"),
        (f"  accepted / sent", f"{api['accepted']}/{api['requests']}"),
        ("  latency p50, ms", f"{api['p50'] * 1000:.1f}"),
        ("  latency p99, ms", f"{api['p99'] * 1000:.1f}"),
        (f"end to end A->B, T.38 over SIP unpaced, {args.calls} calls at once", ""),
        ("  faxes per minute (every page verified)", f"{e2e['per_minute']:.1f}"),
        ("  faxes verified / sent by A / submitted", f"{e2e['verified']}/{e2e['sent']}/{e2e['faxes']}"),
        ("  elapsed, s", f"{e2e['elapsed']:.1f}"),
        ("  API under that load: sendfax p50, ms", f"{e2e['post_p50'] * 1000:.1f}"),
        ("  API under that load: sendfax p99, ms", f"{e2e['post_p99'] * 1000:.1f}"),
        (f"  API under that load: GET status p50, ms ({e2e['gets']} GETs)", f"{e2e['get_p50'] * 1000:.1f}"),
        ("  API under that load: GET status p99, ms", f"{e2e['get_p99'] * 1000:.1f}"),
    ]
    for name, value in rows:
        print(f"{name:<52} {value:>12}")
    return 0 if e2e["verified"] == e2e["faxes"] and api["accepted"] == api["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
