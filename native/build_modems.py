"""cffi (API mode) build of the audio modems in native/audio/: module xmfax._modems.

Every native/audio/*.c is compiled into the one extension; the C API is the
concatenation of every native/audio/*.cdef (each block declares its own), and
the generated glue includes native/audio/modems.h, which includes each block's
header. So adding a modem is: its .c, its .h (one #include line in modems.h),
its .cdef; this file never changes.

setup.py runs this through ``cffi_modules``; by hand:
``python setup.py build_ext --inplace`` (or ``python native/build_modems.py``).
"""
import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
AUDIO = os.path.join(HERE, "audio")


def _sorted(pattern: str) -> list[str]:
    return sorted(glob.glob(os.path.join(AUDIO, pattern)))


def _cdef() -> str:
    parts = []
    for path in _sorted("*.cdef"):
        with open(path, encoding="utf-8") as f:
            parts.append(f"/* {os.path.basename(path)} */\n" + f.read())
    return "\n".join(parts)


SOURCES = [os.path.relpath(p) for p in _sorted("*.c")]
HEADERS = _sorted("*.h")

ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "xmfax._modems",
    '#include "modems.h"\n',
    sources=SOURCES,
    include_dirs=[AUDIO],
    depends=HEADERS + _sorted("*.cdef") + [os.path.abspath(__file__)],   # (flags changed: rebuild)
    libraries=["m"],
    # -O3 vectorises the element-wise loops (equaliser updates); -fcx-limited-range drops
    # the inf/NaN recovery call of complex products, whose finite results it leaves as they
    # are. No -ffast-math: sums keep their order, so the modems' output is the same to the bit.
    extra_compile_args=["-O3", "-std=c99", "-fcx-limited-range", "-Wall", "-Wextra",
                        "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(HERE, "..", "build"), verbose=True)
