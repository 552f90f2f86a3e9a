"""Ask a Class 1 modem who it is and what it can do, and map that into T.30 terms.

Identity: ATI, ATI3, AT+FMI?, AT+FMM?, AT+FMR? (T.31 §8.2.4, "Request DCE
identification"; any may be missing). Capabilities: AT+FCLASS=?, then in Class 1
AT+FTM=?, AT+FRM=?, AT+FTH=?, AT+FRH=? (T.31 Table 2 modulation codes).
:meth:`ProbeResult.t30_options` gives the ``modems`` and ``max_rate`` a
:class:`~xmfax.t30.config.T30Config` should offer in its DIS: only what the
modem can both send and receive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from xmfax.errors import DriverError, DriverTimeoutError
from xmfax.t30.modem import Family, Modulation

from .at import ATEngine, Result


@dataclass(frozen=True)
class ProbeResult:
    identity: dict[str, str] = field(default_factory=dict)   # command -> answer text
    classes: tuple[str, ...] = ()                             # "0", "1", "1.0", "2", "2.0", "8" ...
    ftm: tuple[int, ...] = ()
    frm: tuple[int, ...] = ()
    fth: tuple[int, ...] = ()
    frh: tuple[int, ...] = ()

    @property
    def class1(self) -> bool:
        return "1" in self.classes or "1.0" in self.classes

    @property
    def modulations(self) -> list[Modulation]:
        """Modulations usable both ways (long-training code present in +FTM and +FRM)."""
        both = set(self.ftm) & set(self.frm)
        return [mod for mod in Modulation if mod is not Modulation.V21 and mod.class1_long in both]

    def t30_options(self) -> dict:
        """``modems`` and ``max_rate`` for T30Config (V.27 ter is always included:
        T.30 makes it mandatory, and a Class 1 modem without it cannot fax)."""
        mods = self.modulations
        fams = {mod.family for mod in mods} | {Family.V27TER}
        rate = max((mod.bit_rate for mod in mods), default=4800)
        return {"modems": frozenset(fams), "max_rate": rate}

    def summary(self) -> str:
        lines = []
        for k, v in self.identity.items():
            lines.append(f"{k:10} {v}")
        lines.append(f"{'classes':10} {', '.join(self.classes) or '?'}")
        lines.append(f"{'+FTM':10} {','.join(map(str, self.ftm)) or '-'}")
        lines.append(f"{'+FRM':10} {','.join(map(str, self.frm)) or '-'}")
        lines.append(f"{'+FTH':10} {','.join(map(str, self.fth)) or '-'}")
        lines.append(f"{'+FRH':10} {','.join(map(str, self.frh)) or '-'}")
        mods = self.modulations
        lines.append(f"{'offers':10} " + (", ".join(str(mm) for mm in mods) or "no fax modulation"))
        opt = self.t30_options()
        lines.append(f"{'DIS':10} modems={sorted(f.value for f in opt['modems'])} max_rate={opt['max_rate']}")
        return "\n".join(lines)


def parse_code_list(text: str) -> tuple[int, ...]:
    """'24,48,72,73,74,96' or '(24,48,96)' or '3' or '0-3' -> sorted codes; junk ignored.
    A range is bounded (at most 256 codes) so a hostile answer cannot blow up."""
    codes: set[int] = set()
    for part in re.split(r"[,\s]+", text.replace("(", " ").replace(")", " ")):
        if not part:
            continue
        rng = re.fullmatch(r"(\d{1,4})-(\d{1,4})", part)
        if rng:
            lo, hi = int(rng.group(1)), int(rng.group(2))
            if hi - lo <= 256:
                codes.update(range(lo, hi + 1))
        elif re.fullmatch(r"\d{1,4}", part):
            codes.add(int(part))
    return tuple(sorted(codes))


def parse_classes(text: str) -> tuple[str, ...]:
    out = []
    for part in re.split(r"[,\s()]+", text):
        if re.fullmatch(r"\d(\.\d)?", part) and part not in out:
            out.append(part)
    return tuple(out)


def probe(at: ATEngine, timeout: float = 3.0) -> ProbeResult:
    """Run the probe over an open, initialized ATEngine (echo off). Leaves the
    modem in Class 1 if it has it. DriverError if it does not answer at all."""
    try:
        at.command("AT", timeout)
    except DriverTimeoutError as exc:
        raise DriverError(f"no modem answering AT: {exc}") from exc

    def ask(cmd: str) -> str | None:
        try:
            r = at.command(cmd, timeout, accept=None)
        except DriverTimeoutError:
            return None
        if r.result is not Result.OK or not r.lines:
            return None
        return " / ".join(r.lines)[:200]

    identity = {}
    for cmd in ("ATI", "ATI3", "AT+FMI?", "AT+FMM?", "AT+FMR?"):
        v = ask(cmd)
        if v is not None:
            identity[cmd] = v
    classes = parse_classes(ask("AT+FCLASS=?") or "")
    result = ProbeResult(identity=identity, classes=classes)
    if not result.class1:
        return result
    if at.command("AT+FCLASS=1", timeout, accept=None).result is not Result.OK:
        return result
    lists = {}
    for name in ("FTM", "FRM", "FTH", "FRH"):
        lists[name.lower()] = parse_code_list(ask(f"AT+{name}=?") or "")
    return ProbeResult(identity=identity, classes=classes, **lists)
