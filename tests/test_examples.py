"""The README's newcomer path: the example customers get PDF, UBL and CSV, and the README
shows the example file as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, REPO


def test_the_readme_push_example_leaves_pdf_ubl_and_csv_in_the_deliveries(
        run_cli: Any, tmp_path: Path) -> None:
    imported = run_cli("customer", "import", str(EXAMPLES / "customers.toml"))
    assert imported.exit_code == 0, imported.output
    pushed = run_cli("push", *sorted(str(p) for p in EXAMPLES.glob("*.json")))
    assert pushed.exit_code == 0, pushed.output
    assert "4 accepted, 0 unchanged, 0 rejected" in pushed.output
    deliveries = tmp_path / "data" / "deliveries"
    household = sorted(p.name for p in (deliveries / "100234567").iterdir())
    assert household == ["E2611-00123.csv", "E2611-00123.pdf", "E2611-00123.ubl.xml",
                         "K2611-00007.csv", "K2611-00007.pdf", "K2611-00007.ubl.xml"]
    business = sorted(p.name for p in (deliveries / "200987654" / "erp").iterdir())
    assert business == ["E2611-00125.csv", "E2611-00125.pdf", "E2611-00125.ubl.xml"]
    # the print shop asked for the PDF only
    assert sorted(p.name for p in (deliveries / "print").iterdir()) == ["E2611-00124.pdf"]
    pdf = (deliveries / "100234567" / "E2611-00123.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    ubl = (deliveries / "200987654" / "erp" / "E2611-00125.ubl.xml").read_text("utf-8")
    assert "<cbc:ID>E2611-00125</cbc:ID>" in ubl
    # every customer also has the portal, so each invoice is delivered twice
    assert "deliveries: 8 delivered, 0 to retry, 0 failed" in pushed.output


def test_the_readme_shows_the_example_customers_file_as_it_is() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = (EXAMPLES / "customers.toml").read_text(encoding="utf-8")
    assert f"```toml\n{example}```" in readme
