"""Build hook: compile the C codecs (native/) with cffi in API mode.

The C extension is optional. Where no C compiler is available the build still
succeeds and xmfax runs on its pure-Python path (``xmfax.codecs.backend`` says
which). Set XMFAX_REQUIRE_C=1 to make a failed C build an error instead.
"""
import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "native"))


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers ...
            if os.environ.get("XMFAX_REQUIRE_C") == "1":
                raise
            print(f"xmfax: C codecs not built ({exc}); using the pure-Python path", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if os.environ.get("XMFAX_REQUIRE_C") == "1":
                raise
            print(f"xmfax: C codecs not built ({exc}); using the pure-Python path", file=sys.stderr)


setup(
    # drivers/ (everything that does I/O) lives beside the sans-IO core but installs as xmfax.drivers
    packages=find_packages(include=["xmfax", "xmfax.*"])
    + ["xmfax.drivers"] + ["xmfax.drivers." + p for p in find_packages("drivers")],
    package_dir={"xmfax.drivers": "drivers"},
    package_data={"xmfax": ["py.typed"]},
    cffi_modules=["native/build_codecs.py:ffibuilder", "native/build_modems.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
)
