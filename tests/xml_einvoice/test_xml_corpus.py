"""The gateway's verdict against the official validators' on ~200 e-invoices others wrote.

``../shared/corpus`` (beside the repository, or ``$GATEWAY_STANDARDS_DIR/../corpus``)
holds official EN 16931 and Peppol examples, XRechnung test cases and Factur-X/ZUGFeRD
files from several producers, with ``verdicts.json``: each file's verdict by XSD + CEN
EN 16931 1.3.16 schematron (+ Peppol BIS 3.0.19 where claimed). ``gateway validate`` runs
once over the whole corpus (each schematron is compiled once for the session) and must
never call an invalid file valid, and agree on at least 99 % of the files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from plugins.xml_einvoice.resources import standards_dir

# Beside the standards folder the validator reads its artefacts from.
CORPUS = standards_dir().parent / "corpus"
MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Verdict:
    file: str
    official_valid: bool
    official_rules: frozenset[str]
    gateway_valid: bool
    gateway_rules: frozenset[str]

    @property
    def agrees(self) -> bool:
        return self.official_valid == self.gateway_valid


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    if not (CORPUS / "verdicts.json").is_file():
        pytest.skip(f"third-party corpus not found at {CORPUS} (../shared/corpus; CI has it)")
    return json.loads((CORPUS / "verdicts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def verdicts(corpus: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
             ) -> list[Verdict]:
    """``gateway validate --json`` over every corpus file, in one process."""
    from click.testing import CliRunner

    from gateway.cli import cli
    from gateway.plugins import get_plugin_manager

    data_dir = tmp_path_factory.mktemp("corpus-data")
    files = [str(CORPUS / entry["file"]) for entry in corpus]
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "validate", "--json",
                                      *files], obj=get_plugin_manager(), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    fatal: dict[str, set[str]] = {f: set() for f in files}
    for line in result.stdout.splitlines():
        finding = json.loads(line)
        if finding["severity"] == "fatal":
            fatal[finding["file"]].add(finding["rule"])
    return [Verdict(entry["file"], entry["official_valid"],
                    frozenset(entry["official_fatal_rules"]),
                    not fatal[str(CORPUS / entry["file"])],
                    frozenset(fatal[str(CORPUS / entry["file"])]))
            for entry in corpus]


def _table(rows: list[Verdict]) -> str:
    return "\n".join(f"  {v.file}: official {sorted(v.official_rules) or 'valid'}, "
                     f"gateway {sorted(v.gateway_rules) or 'valid'}" for v in rows)


def test_no_invalid_file_is_called_valid(verdicts: list[Verdict]) -> None:
    false_accepts = [v for v in verdicts if not v.official_valid and v.gateway_valid]
    assert not false_accepts, "called valid, officially invalid:\n" + _table(false_accepts)


def test_agreement_with_the_official_validators(verdicts: list[Verdict]) -> None:
    disagree = [v for v in verdicts if not v.agrees]
    agreement = 1 - len(disagree) / len(verdicts)
    print(f"corpus agreement: {len(verdicts) - len(disagree)}/{len(verdicts)} "
          f"({agreement:.1%})")
    assert agreement >= MIN_AGREEMENT, (
        f"{agreement:.1%} agreement ({len(disagree)} of {len(verdicts)} differ):\n"
        + _table(disagree))


def test_official_rules_are_the_ones_that_refuse(verdicts: list[Verdict]) -> None:
    # Where both refuse a file, the gateway names at least one of the official rules
    # (its own GW-* findings come on top, never instead).
    both = [v for v in verdicts if not v.official_valid and not v.gateway_valid
            and "NOT-AN-INVOICE" not in v.official_rules and "XSD" not in v.official_rules]
    unnamed = [v for v in both if not v.gateway_rules & v.official_rules]
    assert not unnamed, "refused for other reasons than the official rules:\n" + _table(unnamed)


def test_the_corpus_covers_every_kind_of_file(corpus: list[dict[str, Any]]) -> None:
    kinds: Callable[[str], set[str]] = lambda suffix: {  # noqa: E731
        e["file"].split("/")[0] for e in corpus if e["file"].endswith(suffix)}
    assert {"en16931", "peppol", "xrechnung", "zugferd"} <= kinds(".xml")
    assert "zugferd" in kinds(".pdf")
