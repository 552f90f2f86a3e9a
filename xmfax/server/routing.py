"""The incoming routing table: which notification destinations a received fax goes to.

A pure function over the table, the directory and the fax (no I/O but importing a custom
rule's callable). The table is an ordered list of rules, run top to bottom:

``directory``
    The fax's called number (DNIS) is looked up in the fax numbers; it goes to each of the
    number's assigned users: to the user's destinations, or, for a user without any, to an
    email to the user's address. The rule matches when that gives at least one destination.
``direct``
    ``dnis`` and/or ``ani`` patterns (``*`` any run of characters, ``?`` exactly one; a
    missing pattern matches anything, but a direct rule needs at least one) name the
    ``destinations`` of a matching fax.
``custom``
    ``callable = "module:function"``, called as ``function(fax, ctx)`` with the fax row and a
    :class:`RuleContext`; it returns destination names (a match) or None (no match). An
    exception, a bad return value or a callable that cannot be imported is written to the
    trace and the rule is skipped: a broken rule never loses a fax.
``default``
    Always evaluated last, wherever it stands in the list: it gives its destinations to a
    fax that no other rule gave any destination.

Every rule has a ``continue`` flag (default false): when a rule matches and its flag is
false, the table ends there (only the default rule can still apply, and it does not,
since the fax has destinations, unless the matching rule named none). Numbers and
patterns are compared both as dialled and in E.164, so ``+1555*`` matches a DNIS dialled
as ``15551234567`` when the configured country makes it ``+15551234567``.

The result's trace has one line per rule evaluated, e.g.::

    rule 2 'sales' direct dnis=+1555* matched (dnis +15551234567) -> [sales-mail]; continue

which :mod:`xmfax.server.inbound` writes into the fax's event log (kind ``routing``).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = ["RoutingResult", "RuleContext", "route", "check_config", "problems", "find_number", "number_forms",
           "pattern_matches", "KINDS"]

KINDS = ("directory", "direct", "custom", "default")
_RULE_KEYS = {"position", "name", "kind", "dnis", "ani", "destinations", "continue", "callable", "id",
              "enabled", "label"}


@dataclass
class RoutingResult:
    """What the table decided: ``destinations`` as notify.enqueue takes them (``{"name": n}``
    for a configured destination, ``{"type": "email", "to": [...], "name": "user:U"}`` for a user
    without destinations), deduplicated and in order; ``names`` the same as text;
    ``trace`` one line per rule evaluated and a last ``result:`` line; ``matched`` the
    names of the rules that matched; ``errors`` the problems met (unknown destination,
    broken custom rule ...), also in the trace."""

    destinations: list[dict] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, label: str, destination: dict) -> bool:
        if label in self.names:
            return False
        self.names.append(label)
        self.destinations.append(destination)
        return True


@dataclass(frozen=True)
class RuleContext:
    """What a custom rule sees besides the fax: the rule itself, the directory, the
    destinations chosen by the rules before it, and ``forms(number)`` (a number as
    dialled and in E.164)."""

    rule: dict
    numbers: tuple[dict, ...]
    users: tuple[dict, ...]
    destinations: tuple[dict, ...]
    chosen: tuple[str, ...]
    forms: Callable[[str | None], set[str]]


# --------------------------------------------------------------------------- numbers
def _plain(number: str) -> str:
    """``"+1 (555) 123-4567"`` -> ``"+15551234567"``: the separators people write dropped."""
    return re.sub(r"[\s().\-/]", "", number)


def number_forms(number: str | None, normalise: Callable[[str], str | None] | None = None) -> set[str]:
    """The forms a number is compared in: as dialled, without separators, and in E.164
    (``normalise(number)``, which may return None or raise for a number it cannot place)."""
    if not number:
        return set()
    forms = {number, _plain(number)}
    if normalise is not None:
        try:
            e164 = normalise(number)
        except Exception:      # a number the normaliser cannot place is compared as dialled
            e164 = None
        if e164:
            forms.add(e164)
    return forms


def find_number(dnis: str | None, numbers: Iterable[dict],
                normalise: Callable[[str], str | None] | None = None) -> dict | None:
    """The fax number row a called number is (compared as dialled and in E.164); None if none."""
    wanted = number_forms(dnis, normalise)
    if not wanted:
        return None
    for row in numbers:
        if wanted & number_forms(row.get("number"), normalise):
            return row
    return None


_PATTERN_CACHE: dict[str, re.Pattern] = {}


def _compile(pattern: str) -> re.Pattern:
    rx = _PATTERN_CACHE.get(pattern)
    if rx is None:
        body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        rx = _PATTERN_CACHE[pattern] = re.compile(body, re.DOTALL)
    return rx


def pattern_matches(pattern: str, value: str | None, normalise: Callable[[str], str | None] | None = None) -> bool:
    """``*`` any run of characters (also none), ``?`` exactly one; the whole value must match,
    in one of its forms (as dialled, without separators, E.164). An absent value only
    matches ``*``."""
    rx = _compile(pattern)
    if not value:
        return rx.fullmatch("") is not None
    return any(rx.fullmatch(form) for form in number_forms(value, normalise))


# --------------------------------------------------------------------------- custom rules
_CALLABLES: dict[str, Callable] = {}


def load_callable(spec: str) -> Callable:
    """``"package.module:function"`` -> the function (ImportError/AttributeError/ValueError)."""
    fn = _CALLABLES.get(spec)
    if fn is not None:
        return fn
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{spec!r} is not 'module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    _CALLABLES[spec] = obj
    return obj


# --------------------------------------------------------------------------- the table
def _label(rule: dict, ordinal: int) -> str:
    """``rule 2 'sales'``: the rule's place in the table (from 1) and its name."""
    return f"rule {ordinal} {rule.get('name') or rule.get('kind', '?')!r}"


def _patterns(rule: dict) -> str:
    parts = [f"{key}={rule[key]}" for key in ("dnis", "ani") if rule.get(key)]
    return " ".join(parts)


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def route(fax: dict, rules: list[dict], numbers: Iterable[dict] = (), users: Iterable[dict] = (),
          destinations: Iterable[dict] = (), *,
          normalise: Callable[[str], str | None] | None = None) -> RoutingResult:
    """Run the routing table ``rules`` (ordered by ``position``) for ``fax`` (a faxes row:
    ``dnis``, ``ani`` ...). ``numbers``/``users``/``destinations`` are the directory rows
    (``destinations`` only to check names); ``normalise`` turns a number into E.164."""
    numbers, users = tuple(numbers), tuple(users)
    known = {d["name"]: d for d in destinations}
    users_by_name = {u["name"]: u for u in users}
    ordered = list(enumerate(sorted(rules, key=lambda r: r.get("position") or 0), start=1))   # stable
    result = RoutingResult()
    dnis, ani = fax.get("dnis"), fax.get("ani")
    result.trace.append(f"routing fax dnis={dnis or '-'} ani={ani or '-'}")

    def forms(number: str | None) -> set[str]:
        return number_forms(number, normalise)

    def give(names: Iterable[str]) -> list[str]:
        """Adds the named destinations; the labels of those given (unknown names traced)."""
        out = []
        for name in names:
            if name not in known:
                problem = f"unknown destination {name!r}"
                result.errors.append(problem)
                out.append(f"{name} (unknown: skipped)")
                continue
            result.add(name, {"name": name})
            out.append(name)
        return out

    defaults: list[tuple[int, dict]] = []
    stopped_by: str | None = None
    skipped: list[str] = []
    for index, rule in ordered:
        kind = rule.get("kind", "direct")
        label = _label(rule, index)
        if kind == "default":
            defaults.append((index, rule))
            continue
        if rule.get("enabled", True) is False:
            result.trace.append(f"{label} {kind}: disabled")
            continue
        if stopped_by is not None:
            skipped.append(label)
            continue
        cont = bool(rule.get("continue", False))
        then = "continue" if cont else "stop"
        if kind == "direct":
            pats = _patterns(rule)
            if not pats:
                result.trace.append(f"{label} direct: no dnis or ani pattern: skipped")
                result.errors.append(f"{label}: no pattern")
                continue
            ok = all(pattern_matches(rule[key], fax.get(key), normalise) for key in ("dnis", "ani") if rule.get(key))
            if not ok:
                result.trace.append(f"{label} direct {pats} no match")
                continue
            given = give(_names(rule.get("destinations")))
            result.matched.append(rule.get("name") or label)
            result.trace.append(f"{label} direct {pats} matched -> [{', '.join(given)}]; {then}")
        elif kind == "directory":
            pats = _patterns(rule)
            if pats and not all(pattern_matches(rule[key], fax.get(key), normalise)
                                for key in ("dnis", "ani") if rule.get(key)):
                result.trace.append(f"{label} directory {pats} no match")
                continue
            row = find_number(dnis, numbers, normalise)
            if row is None:
                result.trace.append(f"{label} directory: {dnis or 'no dnis'} is not a fax number: no match")
                continue
            assigned = _names(row.get("users"))
            if not assigned:
                result.trace.append(f"{label} directory: {row['number']} has no users: no match")
                continue
            given: list[str] = []
            found = 0
            for user_name in assigned:
                user = users_by_name.get(user_name)
                if user is None:
                    result.errors.append(f"unknown user {user_name!r}")
                    given.append(f"{user_name} (unknown user: skipped)")
                    continue
                own = _names(user.get("destinations"))
                if own:
                    labels = give(own)
                    found += sum(1 for n in own if n in known)
                    given += [f"{user_name}:{g}" for g in labels]
                elif user.get("email"):
                    address = user["email"]
                    result.add(f"email:{address}", {"type": "email", "to": [address], "name": f"user:{user_name}"})
                    given.append(f"{user_name}:email:{address}")
                    found += 1
                else:
                    result.errors.append(f"user {user_name!r} has no destination and no email")
                    given.append(f"{user_name} (no destination, no email: skipped)")
            if not found:
                result.trace.append(f"{label} directory: {row['number']} -> users [{', '.join(given)}]: no match")
                continue
            result.matched.append(rule.get("name") or label)
            result.trace.append(f"{label} directory: {row['number']} -> users [{', '.join(given)}]; {then}")
        elif kind == "custom":
            spec = rule.get("callable") or ""
            try:
                fn = load_callable(spec)
                ctx = RuleContext(rule=dict(rule), numbers=numbers, users=users, destinations=tuple(known.values()),
                                  chosen=tuple(result.names), forms=forms)
                value = fn(dict(fax), ctx)
                if value is not None and (isinstance(value, (str, bytes)) or
                                          not all(isinstance(v, str) for v in value)):
                    raise TypeError(f"returned {value!r}, not a list of destination names or None")
            except Exception as exc:  # a broken custom rule is traced and skipped, never loses the fax
                problem = f"custom {spec}: {type(exc).__name__}: {exc}"
                result.errors.append(problem)
                result.trace.append(f"{label} {problem}: skipped")
                continue
            if value is None:
                result.trace.append(f"{label} custom {spec} no match")
                continue
            given = give(list(value))
            result.matched.append(rule.get("name") or label)
            result.trace.append(f"{label} custom {spec} matched -> [{', '.join(given)}]; {then}")
        else:
            result.errors.append(f"{label}: unknown kind {kind!r}")
            result.trace.append(f"{label}: unknown kind {kind!r}: skipped")
            continue
        if not cont:
            stopped_by = label
    if skipped:
        result.trace.append(f"not evaluated ({stopped_by} ended the table): {', '.join(skipped)}")
    if not defaults:
        if not result.destinations:
            result.trace.append("no default rule")
    for n, (index, rule) in enumerate(defaults):
        label = _label(rule, index)
        if n:
            result.trace.append(f"{label} default: only the first default rule applies: skipped")
        elif result.destinations:
            result.trace.append(f"{label} default: not needed ({len(result.destinations)} destination(s) given)")
        else:
            given = give(_names(rule.get("destinations")))
            result.matched.append(rule.get("name") or label)
            result.trace.append(f"{label} default -> [{', '.join(given)}]")
    result.trace.append(f"result: [{', '.join(result.names)}]" if result.names else "result: no destination")
    return result


# --------------------------------------------------------------------------- config check
def check_config(rules: list[dict], destinations: Iterable[dict], *, zero_retention: bool,
                 users: Iterable[dict] = (), numbers: Iterable[dict] = ()) -> list[str]:
    """Problems with a routing table, as ``ConfigError`` raises them at start: unknown kinds
    and keys, direct rules without a pattern, custom callables that do not import, unknown
    destination names, more than one default rule, and, under zero retention, a table
    without a default rule that names a destination (a fax that no rule routes would have
    nowhere to go). Raises :class:`xmfax.server.config.ConfigError` on the first problem;
    returns the warnings (not fatal)."""
    problems, warnings = _check(rules, destinations, zero_retention=zero_retention, users=users)
    if problems:
        from .config import ConfigError

        raise ConfigError(problems[0] if len(problems) == 1 else "; ".join(problems))
    return warnings


def problems(rules: list[dict], destinations: Iterable[dict], *, zero_retention: bool,
             users: Iterable[dict] = ()) -> list[str]:
    """What check_config would refuse, as a list (empty: fine), for a page that edits the
    table and wants to say no before saving it."""
    return _check(rules, destinations, zero_retention=zero_retention, users=users)[0]


def _check(rules: list[dict], destinations: Iterable[dict], *, zero_retention: bool,
           users: Iterable[dict] = ()) -> tuple[list[str], list[str]]:
    known = {d["name"] for d in destinations}
    problems: list[str] = []
    warnings: list[str] = []
    defaults = []
    for index, rule in enumerate(rules):
        where = f"[[rules]] #{index + 1}" + (f" {rule['name']!r}" if rule.get("name") else "")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key {unknown[0]!r}")
        kind = rule.get("kind", "direct")
        if kind not in KINDS:
            problems.append(f"{where} kind: {kind!r} is not one of {', '.join(KINDS)}")
            continue
        for key in ("dnis", "ani", "callable", "name"):
            if key in rule and not isinstance(rule[key], str):
                problems.append(f"{where} {key}: text expected, not {rule[key]!r}")
        if "continue" in rule and not isinstance(rule["continue"], bool):
            problems.append(f"{where} continue: true or false, not {rule['continue']!r}")
        names = rule.get("destinations", [])
        if isinstance(names, str) or not isinstance(names, (list, tuple)) or \
                not all(isinstance(n, str) for n in names):
            problems.append(f"{where} destinations: a list of destination names, not {names!r}")
            names = []
        for name in names:
            if name not in known:
                problems.append(f"{where} destinations: unknown destination {name!r}")
        if kind == "direct" and not (rule.get("dnis") or rule.get("ani")):
            problems.append(f"{where}: a direct rule needs a dnis or ani pattern ('*' matches all)")
        if kind == "direct" and not names:
            warnings.append(f"{where}: a direct rule without destinations")
        if kind == "custom":
            try:
                load_callable(rule.get("callable") or "")
            except Exception as exc:
                problems.append(f"{where} callable: {rule.get('callable')!r} cannot be loaded: {exc}")
        if kind == "default":
            defaults.append((where, names))
    for user in users:
        for name in _names(user.get("destinations")):
            if name not in known:
                problems.append(f"[[users]] {user.get('name')!r} destinations: unknown destination {name!r}")
    if len(defaults) > 1:
        problems.append(f"{defaults[1][0]}: only one default rule (the first is {defaults[0][0]})")
    if zero_retention and not (defaults and defaults[0][1]):
        problems.append("[retention] days = 0 (zero retention) needs a default rule with a destination "
                        "([[rules]] kind = \"default\", destinations = [...]): an inbound fax must have "
                        "somewhere to go before it is deleted")
    return problems, warnings
