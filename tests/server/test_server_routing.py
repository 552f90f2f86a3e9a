"""The incoming routing table (xmfax/server/routing.py): a pure function, tested exhaustively."""
from __future__ import annotations

import sys
import types

import pytest

from xmfax.server import e164, routing
from xmfax.server.config import ConfigError

DESTS = [{"name": n, "type": "folder", "params": {"path": f"/tmp/{n}"}}
         for n in ("sales-mail", "archive", "support", "catchall", "night", "bob-folder")]
NUMBERS = [{"number": "+15551230001", "csid": "", "users": ["alice", "bob"]},
           {"number": "+15551230002", "csid": "SUPPORT", "users": []},
           {"number": "+15551230003", "csid": "", "users": ["ghost", "carol"]}]
USERS = [{"name": "alice", "email": "alice@example.com", "destinations": []},
         {"name": "bob", "email": "bob@example.com", "destinations": ["bob-folder"]},
         {"name": "carol", "email": "", "destinations": []}]


def norm(number: str) -> str:
    return e164.normalise(number, "1")


def run(rules, dnis="+15551230001", ani="+4930123456", **kw):
    return routing.route({"dnis": dnis, "ani": ani}, rules, NUMBERS, USERS, DESTS, normalise=norm, **kw)


# --------------------------------------------------------------------------- patterns
@pytest.mark.parametrize("pattern,value,expected", [
    ("+1555*", "+15551230001", True),
    ("+1555*", "15551230001", True),            # as dialled -> E.164 with country 1
    ("+1555*", "5551230001", True),             # national, NANP
    ("+1555*", "+4930123", False),
    ("*", "+4930123", True),
    ("*", None, True),                         # an absent ANI matches only '*'
    ("+49*", None, False),
    ("", None, True),
    ("+1555123000?", "+15551230001", True),
    ("+1555123000?", "+155512300012", False),   # '?' is exactly one character
    ("+1555123000?", "+1555123000", False),
    ("*0001", "+15551230001", True),
    ("+1 555 123 0001", "+15551230001", False),  # the pattern is literal text (spaces and all)
    ("+1(555)*", "+1(555)1230001", True),        # regex characters are literal
    ("+1.55*", "+1x55", False),                  # '.' is not a wildcard
    ("anonymous", "anonymous", True),
])
def test_pattern_wildcards(pattern, value, expected):
    assert routing.pattern_matches(pattern, value, norm) is expected


def test_find_number_as_dialled_and_e164():
    assert routing.find_number("+15551230001", NUMBERS, norm)["number"] == "+15551230001"
    assert routing.find_number("15551230001", NUMBERS, norm)["number"] == "+15551230001"
    assert routing.find_number("(555) 123-0002", NUMBERS, norm)["number"] == "+15551230002"
    assert routing.find_number("+15551239999", NUMBERS, norm) is None
    assert routing.find_number(None, NUMBERS, norm) is None
    assert routing.find_number("garbage", NUMBERS, norm) is None   # a normaliser that raises is survived


# --------------------------------------------------------------------------- directory
def test_directory_gives_users_destinations_or_their_email():
    r = run([{"position": 1, "name": "dir", "kind": "directory"}])
    assert r.destinations == [{"type": "email", "to": ["alice@example.com"], "name": "user:alice"},
                              {"name": "bob-folder"}]
    assert r.names == ["email:alice@example.com", "bob-folder"]
    assert r.trace[1] == ("rule 1 'dir' directory: +15551230001 -> users "
                          "[alice:email:alice@example.com, bob:bob-folder]; stop")
    assert r.trace[-1] == "result: [email:alice@example.com, bob-folder]"
    assert r.matched == ["dir"]


def test_directory_number_dialled_nationally():
    r = run([{"name": "dir", "kind": "directory"}], dnis="5551230001")
    assert r.names == ["email:alice@example.com", "bob-folder"]


def test_directory_no_users_unknown_number_and_unknown_user():
    rules = [{"name": "dir", "kind": "directory", "continue": True}]
    assert run(rules, dnis="+15551230002").trace[1] == "rule 1 'dir' directory: +15551230002 has no users: no match"
    assert run(rules, dnis="+15550000000").trace[1] == \
        "rule 1 'dir' directory: +15550000000 is not a fax number: no match"
    assert run(rules, dnis=None).trace[1] == "rule 1 'dir' directory: no dnis is not a fax number: no match"
    r = run(rules, dnis="+15551230003")       # ghost does not exist, carol has neither destination nor email
    assert r.destinations == []
    assert "unknown user 'ghost'" in r.errors
    assert "user 'carol' has no destination and no email" in r.errors
    assert r.trace[1].endswith(": no match")


def test_directory_with_dnis_filter():
    rules = [{"name": "dir", "kind": "directory", "dnis": "+4*"}]
    r = run(rules)
    assert r.trace[1] == "rule 1 'dir' directory dnis=+4* no match"
    assert r.destinations == []


# --------------------------------------------------------------------------- direct + continue
def test_direct_rule_matches_dnis_and_stops():
    rules = [{"position": 1, "name": "sales", "kind": "direct", "dnis": "+1555*", "destinations": ["sales-mail"]},
             {"position": 2, "name": "archive", "kind": "direct", "dnis": "*", "destinations": ["archive"]},
             {"position": 3, "name": "default", "kind": "default", "destinations": ["catchall"]}]
    r = run(rules)
    assert r.names == ["sales-mail"]
    assert r.trace == [
        "routing fax dnis=+15551230001 ani=+4930123456",
        "rule 1 'sales' direct dnis=+1555* matched -> [sales-mail]; stop",
        "not evaluated (rule 1 'sales' ended the table): rule 2 'archive'",
        "rule 3 'default' default: not needed (1 destination(s) given)",
        "result: [sales-mail]",
    ]


def test_continue_flag_goes_on_to_the_next_rules():
    rules = [{"position": 1, "name": "sales", "kind": "direct", "dnis": "+1555*", "destinations": ["sales-mail"],
              "continue": True},
             {"position": 2, "name": "archive", "kind": "direct", "dnis": "*", "destinations": ["archive"],
              "continue": True},
             {"position": 3, "name": "night", "kind": "direct", "ani": "+49*", "destinations": ["night"]},
             {"position": 4, "name": "never", "kind": "direct", "dnis": "*", "destinations": ["support"]}]
    r = run(rules)
    assert r.names == ["sales-mail", "archive", "night"]
    assert r.trace[1] == "rule 1 'sales' direct dnis=+1555* matched -> [sales-mail]; continue"
    assert r.trace[2] == "rule 2 'archive' direct dnis=* matched -> [archive]; continue"
    assert r.trace[3] == "rule 3 'night' direct ani=+49* matched -> [night]; stop"
    assert r.trace[4] == "not evaluated (rule 3 'night' ended the table): rule 4 'never'"
    assert r.trace[5:] == ["result: [sales-mail, archive, night]"]


def test_direct_rule_dnis_and_ani_must_both_match():
    rule = {"name": "both", "kind": "direct", "dnis": "+1555*", "ani": "+33*", "destinations": ["support"]}
    r = run([rule])
    assert r.trace[1] == "rule 1 'both' direct dnis=+1555* ani=+33* no match"
    assert r.destinations == []
    assert run([rule], ani="+33123456789").names == ["support"]


def test_rules_ordered_by_position_not_list_order():
    rules = [{"position": 2, "name": "b", "kind": "direct", "dnis": "*", "destinations": ["archive"]},
             {"position": 1, "name": "a", "kind": "direct", "dnis": "*", "destinations": ["support"]}]
    r = run(rules)
    assert r.names == ["support"]
    assert r.trace[1].startswith("rule 1 'a'")


def test_direct_rule_without_pattern_is_skipped_and_reported():
    r = run([{"name": "nopat", "kind": "direct", "destinations": ["support"]}])
    assert r.destinations == []
    assert r.trace[1] == "rule 1 'nopat' direct: no dnis or ani pattern: skipped"


def test_unknown_destination_is_traced_and_skipped():
    r = run([{"name": "x", "kind": "direct", "dnis": "*", "destinations": ["nope", "archive"]}])
    assert r.names == ["archive"]
    assert r.trace[1] == "rule 1 'x' direct dnis=* matched -> [nope (unknown: skipped), archive]; stop"
    assert r.errors == ["unknown destination 'nope'"]


def test_disabled_rule_and_unknown_kind():
    r = run([{"name": "off", "kind": "direct", "dnis": "*", "destinations": ["archive"], "enabled": False},
             {"name": "odd", "kind": "weird"}])
    assert r.trace[1] == "rule 1 'off' direct: disabled"
    assert r.trace[2] == "rule 2 'odd': unknown kind 'weird': skipped"
    assert r.destinations == []


# --------------------------------------------------------------------------- dedup
def test_destinations_deduplicated_in_order():
    rules = [{"name": "dir", "kind": "directory", "continue": True},
             {"name": "again", "kind": "direct", "dnis": "*", "destinations": ["bob-folder", "archive", "bob-folder"],
              "continue": True},
             {"name": "more", "kind": "direct", "ani": "*", "destinations": ["archive", "sales-mail"]}]
    r = run(rules)
    assert r.names == ["email:alice@example.com", "bob-folder", "archive", "sales-mail"]
    assert len(r.destinations) == 4


# --------------------------------------------------------------------------- default
def test_default_rule_is_last_wherever_it_stands():
    rules = [{"position": 1, "name": "default", "kind": "default", "destinations": ["catchall"]},
             {"position": 2, "name": "sales", "kind": "direct", "dnis": "+4*", "destinations": ["sales-mail"]}]
    r = run(rules)
    assert r.names == ["catchall"]
    assert r.trace[1] == "rule 2 'sales' direct dnis=+4* no match"
    assert r.trace[2] == "rule 1 'default' default -> [catchall]"
    assert r.trace[3] == "result: [catchall]"


def test_default_takes_a_fax_whose_matching_rule_gave_nothing():
    rules = [{"name": "drop", "kind": "direct", "ani": "+49*", "destinations": []},
             {"name": "default", "kind": "default", "destinations": ["catchall"]}]
    r = run(rules)
    assert r.trace[1] == "rule 1 'drop' direct ani=+49* matched -> []; stop"
    assert r.names == ["catchall"]


def test_no_rules_no_destination():
    r = run([])
    assert r.destinations == []
    assert r.trace[-2:] == ["no default rule", "result: no destination"]


def test_second_default_rule_ignored():
    r = run([{"name": "d1", "kind": "default", "destinations": ["catchall"]},
             {"name": "d2", "kind": "default", "destinations": ["archive"]}])
    assert r.names == ["catchall"]
    assert "rule 2 'd2' default: only the first default rule applies: skipped" in r.trace


# --------------------------------------------------------------------------- custom
@pytest.fixture
def custom_module():
    mod = types.ModuleType("xmfax_test_custom_rules")
    calls = []

    def by_ani(fax, ctx):
        calls.append((fax, ctx))
        return ["night"] if (fax.get("ani") or "").startswith("+49") else None

    def broken(fax, ctx):
        raise RuntimeError("database down")

    def bad_value(fax, ctx):
        return "archive"                       # a string, not a list

    def chosen(fax, ctx):
        return list(ctx.chosen) + ["support"] if ctx.forms(fax["dnis"]) & {"+15551230001"} else None

    mod.by_ani, mod.broken, mod.bad_value, mod.chosen, mod.calls = by_ani, broken, bad_value, chosen, calls
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]
    routing._CALLABLES.clear()


def test_custom_rule_matches_and_sees_the_context(custom_module):
    rules = [{"name": "first", "kind": "direct", "dnis": "*", "destinations": ["archive"], "continue": True},
             {"name": "c", "kind": "custom", "callable": "xmfax_test_custom_rules:by_ani"}]
    r = run(rules)
    assert r.names == ["archive", "night"]
    assert r.trace[2] == "rule 2 'c' custom xmfax_test_custom_rules:by_ani matched -> [night]; stop"
    fax, ctx = custom_module.calls[0]
    assert fax["ani"] == "+4930123456"
    assert ctx.chosen == ("archive",) and ctx.rule["name"] == "c"
    assert {u["name"] for u in ctx.users} == {"alice", "bob", "carol"}
    r = run(rules, ani="+33111")
    assert r.trace[2] == "rule 2 'c' custom xmfax_test_custom_rules:by_ani no match"


def test_custom_rule_uses_number_forms(custom_module):
    r = run([{"name": "c", "kind": "custom", "callable": "xmfax_test_custom_rules:chosen"}], dnis="5551230001")
    assert r.names == ["support"]


@pytest.mark.parametrize("spec,why", [
    ("xmfax_test_custom_rules:broken", "RuntimeError: database down"),
    ("xmfax_test_custom_rules:bad_value", "TypeError: returned 'archive', not a list of destination names or None"),
    ("xmfax_test_custom_rules:missing", "AttributeError"),
    ("no_such_module_xyz:fn", "ModuleNotFoundError"),
    ("not-a-spec", "ValueError"),
])
def test_custom_rule_failure_is_traced_and_the_fax_still_routed(custom_module, spec, why):
    rules = [{"name": "c", "kind": "custom", "callable": spec, "continue": False},
             {"name": "after", "kind": "direct", "dnis": "*", "destinations": ["support"]},
             {"name": "default", "kind": "default", "destinations": ["catchall"]}]
    r = run(rules)
    assert r.trace[1].startswith(f"rule 1 'c' custom {spec}: ")
    assert why in r.trace[1] and r.trace[1].endswith(": skipped")
    assert r.names == ["support"]              # a broken rule never stops the table nor loses the fax
    assert r.errors and why.split(":")[0] in r.errors[0]


def test_the_fax_row_given_to_custom_rules_is_a_copy(custom_module):
    def mutate(fax, ctx):
        fax["dnis"] = "changed"
        return None
    custom_module.mutate = mutate
    fax = {"dnis": "+15551230001", "ani": None}
    routing.route(fax, [{"kind": "custom", "callable": "xmfax_test_custom_rules:mutate"}], NUMBERS, USERS, DESTS)
    assert fax["dnis"] == "+15551230001"


# --------------------------------------------------------------------------- check_config
def test_check_config_accepts_a_good_table(custom_module):
    rules = [{"position": 1, "name": "dir", "kind": "directory", "continue": True},
             {"position": 2, "name": "sales", "kind": "direct", "dnis": "+1555*", "destinations": ["sales-mail"]},
             {"position": 3, "name": "c", "kind": "custom", "callable": "xmfax_test_custom_rules:by_ani"},
             {"position": 4, "name": "default", "kind": "default", "destinations": ["catchall"]}]
    assert routing.check_config(rules, DESTS, zero_retention=True, users=USERS) == []


@pytest.mark.parametrize("rules,message", [
    ([{"kind": "sometimes"}], "kind: 'sometimes' is not one of"),
    ([{"kind": "direct", "destinations": ["archive"]}], "a direct rule needs a dnis or ani pattern"),
    ([{"kind": "direct", "dnis": "*", "destinations": ["nope"]}], "unknown destination 'nope'"),
    ([{"kind": "direct", "dnis": "*", "destinations": "archive"}], "a list of destination names"),
    ([{"kind": "direct", "dnis": 5551234, "destinations": ["archive"]}], "dnis: text expected"),
    ([{"kind": "direct", "dnis": "*", "continue": "yes", "destinations": ["archive"]}], "continue: true or false"),
    ([{"kind": "direct", "dnis": "*", "destination": ["archive"]}], "unknown key 'destination'"),
    ([{"kind": "custom", "callable": "no_such_module_xyz:f"}], "cannot be loaded"),
    ([{"kind": "default", "destinations": ["archive"]}, {"kind": "default", "destinations": ["support"]}],
     "only one default rule"),
])
def test_check_config_refuses(rules, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        routing.check_config(rules, DESTS, zero_retention=False)


def test_check_config_zero_retention_needs_a_default_destination():
    with pytest.raises(ConfigError, match="zero retention"):
        routing.check_config([{"kind": "direct", "dnis": "*", "destinations": ["archive"]}], DESTS,
                             zero_retention=True)
    with pytest.raises(ConfigError, match="zero retention"):
        routing.check_config([{"kind": "default", "destinations": []}], DESTS, zero_retention=True)
    assert routing.check_config([], DESTS, zero_retention=False) == []


def test_check_config_user_destinations():
    with pytest.raises(ConfigError, match=r"\[\[users\]\] 'x' destinations: unknown destination 'gone'"):
        routing.check_config([], DESTS, zero_retention=False, users=[{"name": "x", "destinations": ["gone"]}])


def test_problems_lists_without_raising():
    assert routing.problems([{"kind": "default", "destinations": ["archive"]}], DESTS, zero_retention=True) == []
    found = routing.problems([{"kind": "direct", "destinations": ["gone"]}], DESTS, zero_retention=True)
    assert len(found) == 3 and "unknown destination 'gone'" in found[0]
    assert "needs a dnis or ani pattern" in found[1] and "zero retention" in found[2]


# --------------------------------------------------------------------------- property
def _reference_match(pattern: str, value: str) -> bool:
    """A second, independent matcher (dynamic programming over the two strings) as the oracle."""
    n, m = len(pattern), len(value)
    ok = [[False] * (m + 1) for _ in range(n + 1)]
    ok[n][m] = True
    for i in range(n - 1, -1, -1):
        for j in range(m, -1, -1):
            c = pattern[i]
            if c == "*":
                ok[i][j] = ok[i + 1][j] or (j < m and ok[i][j + 1])
            else:
                ok[i][j] = j < m and (c == "?" or c == value[j]) and ok[i + 1][j + 1]
    return ok[0][0]


from hypothesis import given, strategies as st  # noqa: E402


@given(st.text("+0123456789*?.", max_size=12), st.text("+0123456789.", min_size=1, max_size=14))
def test_pattern_matches_agrees_with_a_reference_matcher(pattern, value):
    # without a normaliser a value is compared as dialled and without separators ('.' dropped)
    expected = _reference_match(pattern, value) or _reference_match(pattern, value.replace(".", ""))
    assert routing.pattern_matches(pattern, value) is expected
