"""Two invoices whose numbers clean up to the same file name never overwrite each other
or fail a delivery: the names differ (a short hash for a cleaned number), and a name
written twice in one CLI run gets a suffix, said aloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.core import Dispatcher, Invoice
from gateway.core.documents import document_stem
from tests.conftest import add_customer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_numbers_that_clean_up_alike_get_different_stems() -> None:
    assert document_stem("E2611-00123") == "E2611-00123"
    a, b = document_stem("2026/1"), document_stem("2026_1")
    assert b == "2026_1" and a.startswith("2026_1-") and a != b
    long_a, long_b = "N" * 200 + "a", "N" * 200 + "b"
    assert document_stem(long_a) != document_stem(long_b)
    assert len(document_stem(long_a)) <= 120


def test_convert_into_a_directory_never_overwrites(run_cli: Any, tmp_path: Path,
                                                   invoice_data: dict[str, Any]) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{**invoice_data, "number": n}
                                 for n in ("2026/1", "2026_1", "X-1", "X-1")]), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("convert", str(batch), "--to", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 4, written
    assert "X-1.json" in written and "X-1-2.json" in written and "2026_1.json" in written
    assert "X-1.json was already written in this run; this one is X-1-2.json" in result.stderr
    numbers = sorted(json.loads(p.read_text())["number"] for p in out.iterdir())
    assert numbers == ["2026/1", "2026_1", "X-1", "X-1"]


def test_render_into_a_directory_never_overwrites(run_cli: Any, tmp_path: Path,
                                                  invoice_data: dict[str, Any]) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([invoice_data, invoice_data]), encoding="utf-8")
    result = run_cli("render", str(batch), "-f", "json", "-o", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == \
        ["E2611-00123-2.json", "E2611-00123.json"]
    assert "already written in this run" in result.stderr


def test_folder_delivery_of_two_numbers_that_clean_up_alike(
        gw: Any, invoice_data: dict[str, Any]) -> None:
    add_customer(gw)
    for number in ("2026/7", "2026_7"):
        result = gw.push(Invoice.model_validate({**invoice_data, "number": number}))
        assert result.status == "accepted", result.error
    summary = Dispatcher(gw).run()
    assert summary.delivered == 2 and summary.failed == 0
    folder = gw.config.data_dir / "deliveries" / "100234567"
    numbers = sorted(json.loads(p.read_text())["number"] for p in folder.glob("*.json"))
    assert numbers == ["2026/7", "2026_7"]


def test_an_e_mail_attachment_is_named_after_the_number_without_the_hash() -> None:
    from gateway.core.documents import Document
    from plugins.email.message import attachment_name

    number = "RĒĶ-2026/07"
    doc = Document("pdf", "application/pdf", f"{document_stem(number)}.pdf", b"%PDF")
    assert attachment_name(number, doc) == "RĒĶ-2026_07.pdf"
