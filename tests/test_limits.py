"""Invoice limits (``[limits]`` in gateway.toml): refused early, with the invoice, the
field and the setting named; raised by configuration; memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway import DeliveryError, hookimpl, load_invoice
from gateway.core import Dispatcher
from gateway.core.pipeline import Gateway
from gateway.errors import ConfigError, InputError, InvoiceRejected
from tests.conftest import add_customer

REPO = Path(__file__).resolve().parents[1]


def many_lines(data: dict[str, Any], count: int) -> dict[str, Any]:
    line = data["lines"][0]
    return {**data, "lines": [{**line, "id": str(i + 1)} for i in range(count)]}


def test_an_invoice_with_more_lines_than_the_limit_is_refused_naming_invoice_and_field(
        gateway_factory: Any, invoice_data: dict[str, Any], tmp_path: Path) -> None:
    gw: Gateway = gateway_factory(config="[limits]\nlines_per_invoice = 5\n")
    path = tmp_path / "six.json"
    path.write_text(json.dumps(many_lines(invoice_data, 6)), encoding="utf-8")
    [item] = list(gw.read_file(path))
    assert isinstance(item, InvoiceRejected)
    text = str(item)
    assert "six.json" in text and invoice_data["number"] in text
    assert "[GW-LIMIT] lines (BG-25): 6 lines in one invoice; the limit is 5" in text
    assert "limits.lines_per_invoice" in text
    path.write_text(json.dumps(many_lines(invoice_data, 5)), encoding="utf-8")
    [item] = list(gw.read_file(path))
    assert not isinstance(item, InvoiceRejected)


def test_the_default_line_limit_refuses_tens_of_thousands_of_lines(
        gw: Gateway, invoice_data: dict[str, Any], tmp_path: Path) -> None:
    add_customer(gw)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(many_lines(invoice_data, 20_000)), encoding="utf-8")
    [item] = list(gw.read_file(path))
    assert isinstance(item, InvoiceRejected)
    assert "20,000 lines" in str(item) and "the limit is 1,000" in str(item)
    assert gw.store.list_invoices() == []


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
        gateway_factory: Any, invoice_data: dict[str, Any], tmp_path: Path) -> None:
    gw: Gateway = gateway_factory(config="[limits]\nbytes_per_file = 2048\n")
    path = tmp_path / "padded.json"
    invoice_data["note"] = "x" * 4000
    path.write_text(json.dumps(invoice_data), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(gw.read_file(path))
    assert "padded.json" in str(caught.value)
    assert "limits.bytes_per_file" in str(caught.value)
    with pytest.raises(InputError, match=r"limits\.bytes_per_file"):
        list(gw.read_bytes(path.read_bytes(), source="api:test", filename="x.json"))


def test_a_csv_invoice_with_too_many_rows_is_refused_and_the_next_invoice_still_read(
        gateway_factory: Any, tmp_path: Path) -> None:
    from tests.corpus.make_corpus import render

    csv = render("csv").decode("utf-8-sig")
    gw: Gateway = gateway_factory(config="[limits]\nrows_per_csv_invoice = 3\n")
    header, *body = csv.strip("\r\n").split("\r\n")
    row = body[0]
    # Invoice E2611-00123 spread over 7 line rows, then a valid invoice.
    rows = [row.replace(",1,Elektro", f",{i},Elektro", 1) for i in range(1, 8)]
    other = [r.replace("E2611-00123", "E2611-00999") for r in body]
    path = tmp_path / "batch.csv"
    path.write_text("\r\n".join([header, *rows, *other]) + "\r\n", encoding="utf-8")
    items = list(gw.read_file(path))
    assert len(items) == 2
    refused, accepted = items
    assert isinstance(refused, InvoiceRejected)
    assert "E2611-00123" in str(refused) and "row 2" in str(refused)
    assert "7 CSV rows in one invoice; the limit is 3" in str(refused)
    assert "limits.rows_per_csv_invoice" in str(refused)
    assert not isinstance(accepted, InvoiceRejected)
    assert accepted.number == "E2611-00999"


def test_limits_are_checked_when_the_configuration_is_read(gateway_factory: Any) -> None:
    with pytest.raises(ConfigError, match="lines_per_invoice"):
        gateway_factory(config="[limits]\nlines_per_invoice = 0\n")
    with pytest.raises(ConfigError, match="unknown_limit"):
        gateway_factory(config="[limits]\nunknown_limit = 3\n")


def test_the_largest_refused_json_stays_far_below_one_gib(tmp_path: Path,
                                                          invoice_data: dict[str, Any]) -> None:
    """A file just under the size limit made of lines: the refusal costs a bounded amount
    of memory, measured as the peak RSS of a fresh process."""
    path = tmp_path / "lines.json"
    line = json.dumps(invoice_data["lines"][0])
    head, tail = json.dumps({**invoice_data, "lines": ["@"]}).split('"@"')
    with path.open("w", encoding="utf-8") as fh:
        fh.write(head)
        written = 0
        i = 0
        while written < 60 * 2**20:
            piece = ("," if i else "") + line.replace('"id": "1"', f'"id": "{i}"')
            fh.write(piece)
            written += len(piece)
            i += 1
        fh.write(tail)
    script = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        from gateway.core.config import Config
        from gateway.core.pipeline import Gateway
        gw = Gateway(Config(data_dir=Path({str(tmp_path / 'data')!r})))
        items = list(gw.read_file(Path({str(path)!r})))
        assert len(items) == 1 and "GW-LIMIT" in str(items[0]), items
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    peak_mib = int(done.stdout.split()[-1]) / 1024
    assert peak_mib < 1024, f"peak RSS {peak_mib:.0f} MiB"


class _LongWinded:
    """A channel whose every failure is a megabyte of text (a remote server's reply)."""

    name = "long-winded"
    description = "test"

    class Settings(BaseModel):
        pass

    def deliver(self, bundle: Any, settings: Any, state: Any) -> Any:
        raise DeliveryError("550 " + "x" * 2**20, retryable=False)


class _LongWindedPlugin:
    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(_LongWinded())


def test_a_stored_error_text_is_capped(gateway_factory: Any,
                                       invoice_data: dict[str, Any]) -> None:
    gw: Gateway = gateway_factory(extra_plugins=(("long", _LongWindedPlugin()),),
                                  config="[limits]\nerror_chars = 500\n")
    add_customer(gw, channels=[{"channel": "long-winded"}])
    result = gw.push(load_invoice(invoice_data))
    assert result.status == "accepted", result.error
    Dispatcher(gw).run()
    [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("550 xxx")
    assert len(delivery.last_error) < 600
    assert "1,048,080 more characters cut" in delivery.last_error


def test_validate_streams_a_csv_of_many_invoices(run_cli: Any, tmp_path: Path) -> None:
    """A CSV batch is validated invoice by invoice: a file far over bytes_per_file (which
    bounds files read whole) is validated, not refused."""
    from tests.corpus.make_corpus import render

    header, *body = render("csv").decode("utf-8-sig").strip("\r\n").split("\r\n")
    path = tmp_path / "batch.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(header + "\r\n")
        for n in range(400):
            fh.write("".join(row.replace("E2611-00123", f"B{n:05d}") + "\r\n" for row in body))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "gateway.toml").write_text("[limits]\nbytes_per_file = 65536\n")
    assert path.stat().st_size > 4 * 65536
    result = run_cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("batch.csv: valid")
