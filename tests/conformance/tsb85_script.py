"""The TSB-85 test scripts as data: parse /work/shared/conformance/tsb85.xml.

The file (DTD: fax-tests.dtd beside it) holds ``test-group`` elements (one per
Annex A-J of TSB-85), each with ``test`` elements made of ``step`` and
``repeat`` (an optional, repeatable run of steps). A step's ``dir`` is "T"
(the tester transmits) or "R" (the device under test, DUT, is expected to
transmit); steps without ``dir`` (CALL, ANSWER, WAIT, STATUS) drive the call.

Nothing here knows about xmfax: this module only turns the XML into frozen
dataclasses the runner walks.
"""
from __future__ import annotations

import os
from pathlib import Path
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the checkout
DEFAULT_XML = os.environ.get("XMFAX_TSB85_XML", str(SHARED / "conformance" / "tsb85.xml"))
PAGES_DIR = os.environ.get("XMFAX_TSB85_PAGES", str(SHARED / "conformance" / "pages"))

STEP_TYPES = frozenset({
    "CALL", "ANSWER", "SET", "CNG", "CED", "PREAMBLE", "HDLC", "POSTAMBLE", "TCF", "MSG",
    "PP", "SILENCE", "WAIT", "CLEAR", "STATUS", "IMAGE",
})


class ScriptError(ValueError):
    """The XML does not have the shape the DTD and the runner expect."""


@dataclass(frozen=True, slots=True)
class Check:
    """A TSB-85 measurement point attached to a step (name like MRGN01M05)."""

    name: str
    desc: str = ""
    cond: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """One ``step`` element; ``attrs`` keeps every attribute as written."""

    type: str
    dir: str | None
    attrs: dict
    checks: tuple[Check, ...] = ()
    index: int = 0          # position in the test, 1-based, for messages

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    def int_attr(self, name: str, default: int | None = None) -> int | None:
        v = self.attrs.get(name)
        if v is None or v.strip() == "":
            return default
        try:
            return int(v.strip())
        except ValueError as exc:
            raise ScriptError(f"step {self.index} ({self.type}): {name}={v!r} is not an integer") from exc

    @property
    def tag(self) -> str:
        return self.attrs.get("tag", "") or ""

    @property
    def value(self) -> str | None:
        return self.attrs.get("value")

    def describe(self) -> str:
        bits = [f"#{self.index}", self.dir or "-", self.type]
        if self.tag:
            bits.append(self.tag)
        if self.get("modem"):
            bits.append(self.get("modem"))
        return " ".join(bits)


@dataclass(frozen=True, slots=True)
class Repeat:
    """A ``repeat`` element: its steps run between ``min`` and ``max`` times."""

    steps: tuple[Step, ...]
    min: int = 0
    max: int | None = None
    index: int = 0


@dataclass(frozen=True, slots=True)
class TestCase:
    __test__ = False   # not a pytest class

    name: str
    group: str
    annex: str               # "A".."J"
    items: tuple             # Step | Repeat, in order
    comment: str = ""

    def steps(self):
        """Every step, flattening repeats (for analysis, not execution)."""
        for it in self.items:
            if isinstance(it, Repeat):
                yield from it.steps
            else:
                yield it


@dataclass
class Script:
    tests: list[TestCase] = field(default_factory=list)
    image_path: str | None = None

    def by_name(self, name: str) -> TestCase:
        for t in self.tests:
            if t.name.lower() == name.lower():
                return t
        raise KeyError(name)


_ANNEX_RE = re.compile(r"Annex\s+([A-Z])\b")


def _parse_step(el: ET.Element, index: int) -> Step:
    typ = (el.get("type") or "").strip().upper()
    if typ not in STEP_TYPES:
        raise ScriptError(f"step {index}: unknown type {typ!r}")
    checks = tuple(Check(c.get("name", ""), c.get("desc", ""), c.get("cond", ""))
                   for c in el.findall("check"))
    attrs = {k: v for k, v in el.attrib.items()}
    d = attrs.pop("dir", None)
    attrs.pop("type", None)
    if d not in (None, "T", "R"):
        raise ScriptError(f"step {index}: dir must be T or R, not {d!r}")
    return Step(type=typ, dir=d, attrs=attrs, checks=checks, index=index)


def parse(path: str = DEFAULT_XML) -> Script:
    """Parse the whole script file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ScriptError(f"{path}: {exc}") from exc
    script = Script()
    for cfg in root.findall("config"):
        for p in cfg.findall("path"):
            if p.get("type") == "IMAGE":
                script.image_path = p.get("value")
    for group in root.findall("test-group"):
        gname = group.get("name", "")
        m = _ANNEX_RE.search(gname)
        annex = m.group(1) if m else "?"
        for test in group.findall("test"):
            items: list = []
            n = 0
            for child in test:
                if child.tag == "step":
                    n += 1
                    items.append(_parse_step(child, n))
                elif child.tag == "repeat":
                    steps = []
                    first = n + 1
                    for sub in child.findall("step"):
                        n += 1
                        steps.append(_parse_step(sub, n))
                    mx = child.get("max")
                    items.append(Repeat(tuple(steps), int(child.get("min", "0") or 0),
                                        int(mx) if mx else None, first))
            script.tests.append(TestCase(test.get("name", f"test{len(script.tests)}"), gname,
                                         annex, tuple(items)))
    return script


def hex_value(text: str | None) -> tuple[bytes, bool]:
    """A step's hex value ("FF C8 01 ...") as (bytes, open_ended).

    ``open_ended`` is True when the value ends in "..." ("anything after this")."""
    if not text:
        return b"", False
    toks = text.split()
    open_ended = False
    if toks and toks[-1] == "...":
        open_ended = True
        toks = toks[:-1]
    try:
        return bytes(int(t, 16) for t in toks), open_ended
    except ValueError as exc:
        raise ScriptError(f"bad hex value {text!r}") from exc
