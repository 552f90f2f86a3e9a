"""Two xmfax endpoints faxing each other over real UDP on 127.0.0.1 (drivers/t38_udp.py)."""
from __future__ import annotations

import asyncio
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import test_pages as make_pages  # noqa: E402

session_mod = pytest.importorskip("xmfax.t30.session", reason="the T.30 Session is not built yet")

from xmfax.drivers.t38_udp import parse_hostport, parse_t38_url, run_call  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402


def test_parse_urls():
    assert parse_t38_url("t38://192.0.2.1:5000?local=0.0.0.0:6000") == (("0.0.0.0", 6000), ("192.0.2.1", 5000))
    assert parse_t38_url("t38://127.0.0.1:4000?remote=127.0.0.1:4001") == (("127.0.0.1", 4000), ("127.0.0.1", 4001))
    assert parse_t38_url("t38://[::1]:4000", listen=True) == (("::1", 4000), None)
    assert parse_t38_url("t38://h:1") == (("0.0.0.0", 0), ("h", 1))
    for bad in ("udp://h:1", "t38://h", "t38://h:99999", "t38://h:1?foo=1", "t38://h:1?local=a:1&remote=b:2",
                "t38://:5"):
        with pytest.raises(ValueError):
            parse_t38_url(bad)
    assert parse_hostport("[2001:db8::1]:7") == ("2001:db8::1", 7)


@pytest.mark.parametrize("ecm", [True, False])
def test_two_endpoints_over_udp(ecm):
    pages = make_pages(1)

    async def main():
        ready = asyncio.get_running_loop().create_future()
        rx = session_mod.Session(T30Config(ecm=ecm), calling=False, receive=True)
        tx = session_mod.Session(T30Config(ecm=ecm), calling=True, pages=pages)
        # unpaced keeps the test short; the paced path is the same pump with later timers
        answer = asyncio.create_task(run_call(rx, local=("127.0.0.1", 0), remote=None, paced=False,
                                              config=T38Config(), on_ready=ready.set_result, max_duration=60))
        port = (await ready)[1]
        result = await run_call(tx, local=("127.0.0.1", 0), remote=("127.0.0.1", port), paced=False,
                                config=T38Config(), max_duration=60)
        return result, await answer

    sent, received = asyncio.run(asyncio.wait_for(main(), 90))
    assert sent.status == "success", (sent.reason, sent.detail)
    assert received.status == "success", (received.reason, received.detail)
    assert np.array_equal(received.received_pages[0].image, pages[0].image)
