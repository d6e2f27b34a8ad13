"""Every hostile input gets a clear error naming the input and the field (or is accepted
correctly), the rest of the batch goes on, and nothing half-written is left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.core.pipeline import Gateway, PushResult
from gateway.errors import GatewayError, InvoiceRejected
from tests.conftest import JSON_CUSTOMERS, add_customer
from tests.corpus.make_corpus import FILES, MANIFEST, make_big

CASES = json.loads(MANIFEST.read_text(encoding="utf-8"))
FORMATS = ("json", "csv", "ubl", "cii", "pdf")


def test_the_corpus_is_large_and_covers_every_input_format() -> None:
    assert len(CASES) >= 50
    per_format = {f: sum(1 for c in CASES if c["file"].startswith(f + "-")) for f in FORMATS}
    assert all(n >= 8 for n in per_format.values()), per_format
    assert sorted(c["file"] for c in CASES) == sorted(p.name for p in FILES.iterdir())


def push_file(gw: Gateway, path: Path) -> tuple[list[PushResult], list[GatewayError]]:
    """What ``gateway push`` does with one file; any non-gateway exception escapes."""
    accepted: list[PushResult] = []
    errors: list[GatewayError] = []
    try:
        for item in gw.read_file(path):
            if isinstance(item, InvoiceRejected):
                errors.append(item)
                continue
            result = gw.push(item, source=str(path))
            if result.status == "accepted":
                accepted.append(result)
            else:
                assert result.error is not None
                errors.append(result.error)
    except GatewayError as exc:
        errors.append(exc)
    return accepted, errors


def nothing_half_written(gw: Gateway) -> None:
    leftovers = [p for p in gw.config.data_dir.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def check(gw: Gateway, path: Path, case: dict[str, Any]) -> None:
    accepted, errors = push_file(gw, path)
    text = "\n".join(str(e) for e in errors)
    if case["expect"] == "rejected":
        assert errors and not accepted, f"{case['file']} ({case['why']}) was accepted"
        for error in errors:
            assert path.name in str(error), f"error does not name the input: {error}"
        for mention in case["mentions"]:
            assert mention in text, f"{case['file']}: {mention!r} not in {text!r}"
        assert gw.store.list_invoices() == []
        assert not (gw.config.data_dir / "archive").exists() or not any(
            p.is_file() for p in (gw.config.data_dir / "archive").rglob("*"))
    elif case["expect"] == "accepted":
        assert accepted and not errors, f"{case['file']} ({case['why']}): {text}"
        names = " ".join(n for r in accepted for n in r.documents)
        for mention in case["mentions"]:
            assert mention in names
        for result in accepted:
            for name in result.documents:
                assert "/" not in name and not name.startswith(".")
    else:
        assert (accepted, errors) == ([], [])
    nothing_half_written(gw)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_hostile_input(gw: Gateway, case: dict[str, Any]) -> None:
    add_customer(gw)
    check(gw, FILES / case["file"], case)


@pytest.fixture(scope="module")
def big_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    directory = tmp_path_factory.mktemp("big-corpus")
    return directory, make_big(directory)


@pytest.mark.parametrize("index", range(7))
def test_big_input(gw: Gateway, big_cases: tuple[Path, list[Any]], index: int) -> None:
    directory, cases = big_cases
    case = cases[index]
    add_customer(gw)
    check(gw, directory / case.name, {"file": case.name, "expect": case.expect,
                                      "mentions": case.mentions, "why": case.why})


def test_a_batch_of_every_hostile_input_still_delivers_the_good_invoice(
        run_cli: Any, tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    assert run_cli("customer", "import", str(JSON_CUSTOMERS)).exit_code == 0
    invoice_data["number"] = "GOOD-0001"
    good = tmp_path / "zz-good.json"
    good.write_text(json.dumps(invoice_data), encoding="utf-8")
    result = run_cli("push", *sorted(str(p) for p in FILES.iterdir()), str(good))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for case in CASES:
        if case["expect"] == "rejected":
            assert case["file"] in result.output, case["file"]
    delivered = tmp_path / "data" / "deliveries" / "100234567" / "GOOD-0001.json"
    assert json.loads(delivered.read_text())["number"] == "GOOD-0001"
    assert not [p for p in (tmp_path / "data").rglob(".tmp-*")]
