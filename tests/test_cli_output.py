"""What the CLI prints from input: control characters escaped, refusals said once, in
plain words (no Python repr), and line breaks refused in invoice numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from gateway.cli.output import SafeConsole
from gateway.core.text import printable

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONTROL = ("\x1b", "\x07", "\x00", "\x9b", "\u202e")


def _write(tmp_path: Path, name: str, invoice_data: dict[str, Any], number: str) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({**invoice_data, "number": number}), encoding="utf-8")
    return path


def test_a_refused_invoice_number_reaches_the_terminal_escaped(
        run_cli: Any, tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    run_cli("customer", "import", str(EXAMPLES / "customers.toml"))
    hostile = "E1\x1b]0;owned\x07\x1b[2J\x00\x9b\u202eZ"
    path = _write(tmp_path, "esc.json", invoice_data, hostile)
    for args in (("push", str(path)), ("validate", str(path)),
                 ("convert", str(path), "--to", "json", "-o", str(tmp_path / "o.json"))):
        result = run_cli(*args)
        assert result.exit_code == 1
        for char in CONTROL:
            assert char not in result.output, (args, char)
        assert "E1\\e]0;owned\\x07\\e[2J\\x00\\x9b\\u202eZ" in result.output, result.output
        assert "Value error" not in result.output and "Traceback" not in result.output


def test_a_line_break_in_an_invoice_number_is_refused(
        run_cli: Any, tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    run_cli("customer", "import", str(EXAMPLES / "customers.toml"))
    path = _write(tmp_path, "crlf.json", invoice_data, "E2\r\nE3 accepted")
    result = run_cli("push", str(path))
    assert result.exit_code == 1
    assert "[BR-02] number (BT-1): must be one line" in result.output
    assert "E2\\r\\nE3 accepted" in result.output
    assert "\r" not in result.output


def test_brackets_in_a_number_are_text_not_console_markup(
        run_cli: Any, tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    run_cli("customer", "import", str(EXAMPLES / "customers.toml"))
    path = _write(tmp_path, "brackets.json", invoice_data, "E[/x]9")
    result = run_cli("push", str(path))
    assert result.exit_code == 0, result.output
    assert "E[/x]9" in run_cli("status").stdout


def test_validate_says_an_unsafe_document_once(run_cli: Any) -> None:
    corpus = Path(__file__).resolve().parent / "corpus" / "files"
    result = run_cli("validate", str(corpus / "ubl-xxe-file.xml"))
    assert result.exit_code == 1
    assert result.output.count("DOCTYPE") == 1, result.output


def test_table_cells_from_stored_text_are_escaped() -> None:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, width=200)
    table = Table()
    table.add_column("error")
    table.add_row("550 \x1b]2;hello\x07 refused")
    console.print(table)
    console.print("remote said \x1b[31mred", highlight=False)
    text = buffer.getvalue()
    assert "\x1b]2;" not in text and "\x07" not in text and "\x1b[31mred" not in text
    assert "\\e]2;hello\\x07" in text and "\\e[31mred" in text


def test_printable_keeps_ordinary_text() -> None:
    assert printable("Jānis Bērziņš — rēķins Nr. 5\tok") == "Jānis Bērziņš — rēķins Nr. 5\tok"
    assert printable("a\nb") == "a\\nb"
    assert printable("a\nb", keep_newlines=True) == "a\nb"
