"""docs/server.md cannot drift from the code (owner: H7 service): its full example config
parses with the service's and every component's parser, holds every key each parser knows,
and the key table lists them all."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from xmfax.server import config as config_module
from xmfax.server.config import ConfigError, WebConfig, from_dict

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def _parsers() -> dict:
    from xmfax.server import http, inbound, mail2fax, mailer, notify, outbound, retention
    return {
        "outbound": outbound.OutboundConfig.from_dict,
        "inbound": inbound.InboundConfig.from_dict,
        "notify": notify.NotifyConfig.from_dict,
        "smtp": mailer.SmtpConfig.from_dict,
        "mail2fax": mail2fax.Mail2FaxConfig.from_dict,
        "retention": retention.RetentionConfig.from_dict,
        "limits": http.LimitsConfig.from_dict,
        "web": WebConfig.from_dict,
    }


def _known_keys(section: str, parse) -> set[str]:
    """The keys a component's parser knows, as it says when given one it does not."""
    with pytest.raises(ConfigError) as e:
        parse({"zz_not_a_key": 1})
    m = re.search(r"\(known: ([^)]*)\)", str(e.value))
    assert m, f"[{section}]: the unknown-key error does not list the known keys: {e.value}"
    return {k.strip() for k in m.group(1).split(",")}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def example(doc) -> dict:
    m = re.search(r"<!-- full-config -->\s*```toml\n(.*?)```", doc, re.S)
    assert m, "docs/server.md has no <!-- full-config --> toml block"
    return tomllib.loads(m.group(1))


def test_the_example_parses_with_every_parser(example, tmp_path):
    example = dict(example)
    for key in ("tls_cert", "tls_key"):                # the HTTPS files it names must exist to parse
        (tmp_path / f"https-{key}").write_text("x")
        example[key] = str(tmp_path / f"https-{key}")
    cfg = from_dict(example, source="docs/server.md")
    assert set(example) == set(config_module.SCALARS) | set(config_module.SECTIONS) | set(config_module.ARRAYS)
    parsers = _parsers()
    for section, parse in parsers.items():
        raw = dict(cfg.section(section))
        if section == "mail2fax":                      # the files it names must exist to parse
            for key in ("tls_cert", "tls_key"):
                (tmp_path / key).write_text("x")
                raw[key] = str(tmp_path / key)
        if section == "inbound":
            parse(raw, cfg.section("outbound"))
        else:
            parse(raw)


def test_the_example_and_the_table_hold_every_key(example, doc):
    table = set(re.findall(r"^\| (\(top\)|`\[[a-z0-9]+\]`) \| `([a-z_0-9]+)` \|", doc, re.M))
    for key in config_module.SCALARS:
        assert ("(top)", key) in table, f"the table lacks the top-level key {key}"
    for section, parse in _parsers().items():
        known = _known_keys(section, parse)
        assert set(example[section]) == known, (
            f"[{section}] in the example: missing {sorted(known - set(example[section]))}, "
            f"not known {sorted(set(example[section]) - known)}")
        documented = {k for s, k in table if s == f"`[{section}]`"}
        assert documented == known, (f"[{section}] in the table: missing {sorted(known - documented)}, "
                                     f"not known {sorted(documented - known)}")


def test_the_example_seeds_every_array_key(example):
    assert {k for n in example["numbers"] for k in n} == {"number", "csid", "users", "retention_days", "label"}
    assert {k for u in example["users"] for k in u} == {"name", "email", "destinations"}
    assert {k for r in example["rules"] for k in r} == {"name", "kind", "dnis", "ani", "destinations",
                                                         "continue", "callable"}
    assert {r["kind"] for r in example["rules"]} == {"directory", "direct", "custom", "default"}
    assert {d["type"] for d in example["destinations"]} == {"email", "folder", "printer", "webhook"}


def test_the_doc_covers_what_the_issue_asks(doc):
    """docs/server.md covers the config keys (above), the XML schema, the curl example, the
    routing table's semantics and retention with what zero retention guarantees."""
    for title in ("REST API", "Outbound", "Inbound and routing", "Notifications", "Email to fax",
                  "Retention and storage"):
        assert re.search(rf"^## {re.escape(title)}$", doc, re.M), title
    for subsection in ("The XML control file", "The routing table", "Zero retention"):
        assert re.search(rf"^###+ {re.escape(subsection)}", doc, re.M), subsection
    assert "curl -F metadata=@" in doc or "curl -s -F metadata=@" in doc
