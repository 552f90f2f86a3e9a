"""benchmarks/audio_rx_digest.py: the saved inputs cover every receiver, and a receiver's
digest over a saved file is the same run after run (the check that a speed change left
the receivers' output as it was depends on it; uninitialised state would break it)."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "audio_rx_digest", os.path.join(HERE, "..", "..", "benchmarks", "audio_rx_digest.py"))
rx_digest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rx_digest)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rxin")
    rx_digest.save(str(folder))
    return folder


def test_saved_inputs_cover_every_receiver_and_digests_repeat(saved):
    tmp_path = saved
    names = sorted(os.listdir(tmp_path))
    kinds = {n.split("_")[0] for n in names}
    assert {"v17", "v17short", "v29", "v27ter", "v21", "tone"} <= kinds
    for rate in ("14400", "12000", "9600", "7200"):
        assert f"v17_{rate}_x_clean.npy" in names and f"v17short_{rate}_x_clean.npy" in names
    picked = [n for n in names if n.endswith(("_x_clean.npy", "_x_snr20.npy"))]
    first = [rx_digest.digest(str(tmp_path / n)) for n in picked]
    again = [rx_digest.digest(str(tmp_path / n)) for n in reversed(picked)][::-1]
    assert first == again
    # a clean V.17 14400 transmission trains and delivers its bits
    line = rx_digest.digest(str(tmp_path / "v17_14400_x_clean.npy"))
    assert int(line.split()[2]) > 14400 * 3 - 1000


def test_digest_tells_different_outputs_apart(saved):
    tmp_path = saved
    x = np.load(tmp_path / "v29_9600_x_clean.npy")
    y = x.copy()
    mid = len(y) // 2
    y[mid:mid + 40] = -y[mid:mid + 40]          # a phase flip in the data: other bits
    np.save(tmp_path / "v29_9600_x_flipped.npy", y)
    a = rx_digest.digest(str(tmp_path / "v29_9600_x_clean.npy")).split()[1:]
    b = rx_digest.digest(str(tmp_path / "v29_9600_x_flipped.npy")).split()[1:]
    assert a != b
