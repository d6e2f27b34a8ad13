"""Write the hostile-input corpus: ``python3 tests/corpus/make_corpus.py``.

Every case starts from the valid household invoice in ``examples/``, rendered by the
gateway's own formats (JSON, CSV, UBL, CII, Factur-X PDF), and breaks it in one way.
The small files are committed under ``tests/corpus/files/`` with ``manifest.json``
(what each one is and what the gateway must say about it); the big ones (a 200 MB file,
a 1,000-line invoice) are made at test time by :func:`make_big` into a temporary
directory, never committed.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FILES = HERE / "files"
MANIFEST = HERE / "manifest.json"
EXAMPLE = REPO / "examples" / "electricity-household.json"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: str  # "rejected" or "accepted"
    mentions: tuple[str, ...]  # every one must appear in the error (or in the filename)
    why: str


def base_json() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def render(fmt: str, data: dict[str, Any] | None = None) -> bytes:
    """The example invoice in one of the gateway's formats."""
    from gateway.core import complete, load_invoice
    from gateway.core.config import Config
    from gateway.core.pipeline import Gateway

    gw = Gateway(Config(data_dir=Path("/nonexistent-corpus")), store=_NoStore())  # type: ignore[arg-type]
    invoice = complete(load_invoice(data or base_json(), source="corpus"), source="corpus")
    return gw.render(invoice, fmt, validate=False).content


class _NoStore:
    """Rendering needs no database."""

    def close(self) -> None:
        pass


def js(mutate: Callable[[dict[str, Any]], Any]) -> bytes:
    data = base_json()
    mutate(data)
    return json.dumps(data, ensure_ascii=False, indent=1).encode()


def sub(data: bytes, pattern: bytes, replacement: bytes, count: int = 1) -> bytes:
    new, n = re.subn(pattern, replacement, data, count=count)
    assert n, f"pattern {pattern!r} not found"
    return new


XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE Invoice SYSTEM "http://127.0.0.1:9/evil.dtd">\n'
LAUGHS = b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [\n<!ENTITY lol "lol">\n' + b"".join(
    b'<!ENTITY lol%d "' % i + (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10 + b'">\n'
    for i in range(1, 10)) + b"]>\n"


def xml_with_prolog(doc: bytes, prolog: bytes, entity_in: bytes) -> bytes:
    """Swap the XML declaration for ``prolog`` and use an entity inside the invoice number."""
    body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", doc)
    return prolog + sub(body, entity_in, entity_in.replace(b"E2611-00123", b"&xxe;"))


def xml_cases(fmt: str, doc: bytes) -> list[Case]:
    ubl = fmt == "ubl"
    number = b"<cbc:ID>E2611-00123</cbc:ID>" if ubl else b"<ram:ID>E2611-00123</ram:ID>"
    date_re = (rb"<cbc:IssueDate>2026-11-04</cbc:IssueDate>" if ubl
               else rb'<udt:DateTimeString format="102">20261104</udt:DateTimeString>')
    bad_date = (b"<cbc:IssueDate>2026-02-30</cbc:IssueDate>" if ubl
                else b'<udt:DateTimeString format="102">20260230</udt:DateTimeString>')
    payable = (rb'<cbc:PayableAmount currencyID="EUR">78.72</cbc:PayableAmount>' if ubl
               else rb"<ram:DuePayableAmount>78.72</ram:DuePayableAmount>")
    quantity = (rb'<cbc:InvoicedQuantity unitCode="KWH">312</cbc:InvoicedQuantity>' if ubl
                else rb'<ram:BilledQuantity unitCode="KWH">312</ram:BilledQuantity>')
    price = (rb'<cbc:PriceAmount currencyID="EUR">0.1389</cbc:PriceAmount>' if ubl
             else rb"<ram:ChargeAmount>0.1389</ram:ChargeAmount>")
    base_zero = (b'<cbc:BaseQuantity unitCode="KWH">0</cbc:BaseQuantity>' if ubl
                 else b'<ram:BasisQuantity unitCode="KWH">0</ram:BasisQuantity>')
    deep = b"<a>" * 5_000 + b"</a>" * 5_000
    nest_at = b"</cbc:ID>" if ubl else b"</ram:ID>"
    return [
        Case(f"{fmt}-xxe-file.xml", xml_with_prolog(doc, XXE, number), "rejected",
             ("DOCTYPE",), "external entity reading /etc/passwd"),
        Case(f"{fmt}-external-dtd.xml",
             EXTERNAL_DTD + re.sub(rb"^<\?xml[^>]*\?>\s*", b"", doc), "rejected",
             ("DOCTYPE",), "external DTD fetched over the network"),
        Case(f"{fmt}-billion-laughs.xml",
             xml_with_prolog(doc, LAUGHS.replace(b"lol9", b"xxe"), number), "rejected",
             ("DOCTYPE",), "exponential entity expansion"),
        Case(f"{fmt}-deep-nesting.xml",
             sub(doc, re.escape(nest_at), nest_at + deep), "rejected", ("depth",),
             "5,000 nested elements inside the invoice"),
        Case(f"{fmt}-truncated.xml", doc[: len(doc) // 2], "rejected", ("well-formed",),
             "cut off in the middle"),
        Case(f"{fmt}-invalid-utf8.xml", sub(doc, b"Elektroener", b"Elektro\xff\xfeener"),
             "rejected", ("well-formed",), "bytes that are not UTF-8 in a text field"),
        Case(f"{fmt}-bom-after-declaration.xml",
             sub(doc, rb"\?>\s*", b"?>\n\xef\xbb\xbf"), "rejected", ("well-formed",),
             "a byte order mark after the XML declaration"),
        Case(f"{fmt}-nul-byte.xml", sub(doc, b"Elektroener", b"Elektro\x00ener"), "rejected",
             ("well-formed",), "a NUL byte in a text field"),
        Case(f"{fmt}-feb-30.xml", sub(doc, date_re, bad_date), "rejected", ("issue_date",),
             "issue date 2026-02-30"),
        Case(f"{fmt}-totals-mismatch.xml",
             sub(doc, payable, payable.replace(b"78.72", b"87.27").replace(b"\\", b"")),
             "rejected", ("amount_due",), "amount due does not match the lines"),
        Case(f"{fmt}-negative-price.xml",
             sub(doc, price, price.replace(b"0.1389", b"-0.1389").replace(b"\\", b"")),
             "rejected", ("price", "BR-27"), "negative item net price (BR-27)"),
        Case(f"{fmt}-huge-quantity.xml",
             sub(doc, quantity, quantity.replace(b"312", b"9" * 400).replace(b"\\", b"")),
             "rejected", ("quantity",), "a 400-digit quantity"),
        Case(f"{fmt}-zero-base-quantity.xml",
             sub(doc, price, price.replace(b"\\", b"") + base_zero), "rejected",
             ("base_quantity",), "price base quantity 0"),
        Case(f"{fmt}-number-path.xml",
             sub(doc, re.escape(number), number.replace(b"E2611-00123", b"../../etc/E1")),
             "accepted", ("etc_E1",), "invoice number with ../ (used in file names)"),
        Case(f"{fmt}-crlf-number.xml",
             sub(doc, re.escape(number), number.replace(b"E2611-00123", b"E1&#13;&#10;E2 ok")),
             "rejected", ("number", "one line"), "CR/LF inside the invoice number"),
        Case(f"{fmt}-escape-number.xml",
             sub(doc, re.escape(number), number.replace(b"E2611-00123", b"E1\xc2\x9b2J")),
             "rejected", ("number", "control"), "a C1 control (CSI) in the invoice number"),
        Case(f"{fmt}-empty.xml", b"", "rejected", ("not a format",), "an empty file"),
        Case(f"{fmt}-wrong-root.xml",
             b'<?xml version="1.0"?><Invoice xmlns="urn:example:not-ubl"><ID>1</ID></Invoice>',
             "rejected", ("not a format",), "an XML document of another vocabulary"),
    ]


def csv_cases(doc: bytes) -> list[Case]:
    lines = doc.split(b"\n")
    head, rows = lines[0], lines[1:]
    body = b"\n".join(rows)

    def field(row: bytes, old: bytes, new: bytes) -> bytes:
        return row.replace(old, new, 1)

    return [
        Case("csv-invalid-utf8.csv", head + b"\n" + body.replace(b"Elektroener", b"El\xff\xfe"),
             "rejected", ("UTF-8",), "bytes that are not UTF-8"),
        Case("csv-bom-in-row.csv", head + b"\n\xef\xbb\xbf" + body, "rejected",
             ("invoice_number",),
             "a byte order mark at the start of a data row"),
        Case("csv-nul-byte.csv", head + b"\n" + body.replace(b"Elektroener", b"El\x00ener", 1),
             "rejected", ("item_name",), "a NUL byte in a field"),
        Case("csv-formula.csv",
             head + b"\n" + body.replace(b"J\xc4\x81nis B\xc4\x93rzi\xc5\x86\xc5\xa1",
                                         b"=HYPERLINK(\"http://evil\";\"x\")"),
             "accepted", (), "a spreadsheet formula in the buyer name: stored as text"),
        Case("csv-feb-30.csv", head + b"\n" + body.replace(b"2026-11-04", b"2026-02-30"),
             "rejected", ("issue_date",), "issue date 2026-02-30"),
        Case("csv-negative-price.csv", head + b"\n" + body.replace(b",0.1389,", b",-0.1389,"),
             "rejected", ("price", "BR-27"), "negative item net price (BR-27)"),
        Case("csv-zero-base-quantity.csv",
             head + b"\n" + body.replace(b",0.1389,,", b",0.1389,0,", 1), "rejected",
             ("price_base_quantity",), "price base quantity 0"),
        Case("csv-huge-number.csv", head + b"\n" + body.replace(b",312,", b"," + b"9" * 400 + b",",
                                                                1),
             "rejected", ("quantity",), "a 400-digit quantity"),
        Case("csv-many-decimals.csv", head + b"\n" + body.replace(b",43.34,", b",43.3412345,"),
             "rejected", ("line_net_amount",), "a line amount with 7 decimals"),
        Case("csv-totals-mismatch.csv", head + b"\n" + body.replace(b",78.72,", b",87.27,"),
             "rejected", ("total_with_vat",), "amount due does not match the lines"),
        Case("csv-missing-columns.csv", b"invoice_number,issue_date\nE1,2026-11-04\n",
             "rejected", ("column",), "a header without the required columns"),
        Case("csv-unclosed-quote.csv", head + b"\n" + field(rows[0], b",line,", b',"line,'),
             "rejected", ("quote",), "a quoted field that never ends"),
        Case("csv-crlf-number.csv", head + b"\n" + re.sub(
            rb"(?m)^E2611-00123,", b'"E2611\r\n00123",', body), "rejected",
             ("invoice_number", "one line"),
             "CR/LF inside a quoted invoice number"),
        Case("csv-number-collide.csv", head + b"\n" + body.replace(b"E2611-00123", b"2026/1")
             + body.replace(b"E2611-00123", b"2026_1"), "accepted", ("2026_1.json", "2026_1-"),
             "two numbers that clean up to the same file name: both kept, names differ"),
        Case("csv-empty.csv", b"", "rejected", ("empty",), "an empty file"),
        Case("csv-header-only.csv", head + b"\n", "rejected", ("no invoice rows",),
             "only the header row"),
        Case("csv-number-slash.csv", head + b"\n" + body.replace(b"E2611-00123", b"2026/11/0007"),
             "accepted", ("2026_11_0007",), "an invoice number with / (used in file names)"),
    ]


def json_cases() -> list[Case]:
    def line0(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
        return lambda d: d["lines"][0].__setitem__(key, value)

    return [
        Case("json-invalid-utf8.json", js(lambda d: None).replace(b"Elektroener", b"El\xff\xfe"),
             "rejected", ("UTF-8",), "bytes that are not UTF-8"),
        Case("json-bom-after-space.json", b"  \xef\xbb\xbf" + js(lambda d: None), "rejected",
             ("JSON",), "a byte order mark after leading spaces"),
        Case("json-bom-in-number.json", js(lambda d: d.__setitem__("number", "\ufeffE2611-9")),
             "rejected", ("number",), "a byte order mark inside the invoice number"),
        Case("json-nul-in-name.json",
             js(lambda d: d["buyer"].__setitem__("name", "J\u0000nis")), "rejected",
             ("buyer.name",), "a NUL character in the buyer name"),
        Case("json-deep-nesting.json", b"[" * 50_000 + b"]" * 50_000, "rejected", (),
             "50,000 nested arrays"),
        Case("json-number-dotdot.json", js(lambda d: d.__setitem__("number", "../../etc/passwd")),
             "accepted", ("etc_passwd",), "invoice number with ../ (used in file names)"),
        Case("json-number-slash.json", js(lambda d: d.__setitem__("number", "2026/11/0042")),
             "accepted", ("2026_11_0042",), "invoice number with /"),
        Case("json-formula.json",
             js(lambda d: d["buyer"].__setitem__("name", "=cmd|' /C calc'!A0")), "accepted",
             (), "a spreadsheet formula in the buyer name: stored as text"),
        Case("json-huge-quantity.json", js(line0("quantity", "9" * 400)), "rejected",
             ("lines[0].quantity",), "a 400-digit quantity"),
        Case("json-exponent.json", js(line0("quantity", "1e999999999")), "rejected",
             ("lines[0].quantity",), "an exponent that would never end"),
        Case("json-many-decimals.json",
             js(lambda d: d["lines"][0]["price"].__setitem__("net", "0.12345678901234567890")),
             "rejected", ("lines[0].price",), "a price with 20 decimals"),
        Case("json-nan.json", js(lambda d: None).replace(b'"312"', b"NaN", 1), "rejected",
             ("quantity",), "NaN as a quantity"),
        Case("json-feb-30.json", js(lambda d: d.__setitem__("issue_date", "2026-02-30")),
             "rejected", ("issue_date",), "issue date 2026-02-30"),
        Case("json-negative-price.json",
             js(lambda d: d["lines"][0]["price"].__setitem__("net", "-0.1389")), "rejected",
             ("lines[0].price",), "negative item net price (BR-27)"),
        Case("json-zero-quantity.json", js(line0("quantity", "0")), "accepted", (),
             "a zero quantity: EN 16931 allows it (a line with no charge)"),
        Case("json-negative-quantity.json", js(line0("quantity", "-312")), "accepted", (),
             "a negative quantity: EN 16931 allows it (a correction), amount due < 0"),
        Case("json-zero-base-quantity.json",
             js(lambda d: d["lines"][0]["price"].__setitem__("base_quantity", "0")),
             "rejected", ("lines[0].price.base_quantity",),
             "price base quantity 0 (the price is per 0 units: a division by zero)"),
        Case("json-negative-base-quantity.json",
             js(lambda d: d["lines"][0]["price"].__setitem__("base_quantity", "-1")),
             "rejected", ("lines[0].price.base_quantity",), "negative price base quantity"),
        Case("json-totals-mismatch.json",
             js(lambda d: d.__setitem__("totals", {"line_net_total": "65.06",
                                                   "total_without_vat": "65.06",
                                                   "vat_total": "13.66",
                                                   "total_with_vat": "78.72",
                                                   "amount_due": "87.27"})),
             "rejected", ("amount_due",), "amount due does not match the lines"),
        Case("json-wrong-type.json", js(line0("quantity", [1, 2])), "rejected",
             ("lines[0].quantity",), "a list where a number belongs"),
        Case("json-no-seller.json", js(lambda d: d.pop("seller")), "rejected", ("seller",),
             "the seller is missing"),
        Case("json-bad-currency.json", js(lambda d: d.__setitem__("currency", "EURO")),
             "rejected", ("currency",), "a currency code that is not ISO 4217"),
        Case("json-crlf-number.json", js(lambda d: d.__setitem__("number", "E1\r\nE2 ok")),
             "rejected", ("number", "one line"), "CR/LF inside the invoice number"),
        Case("json-escape-number.json",
             js(lambda d: d.__setitem__("number", "E1\x1b]0;owned\x07\x1b[2J")), "rejected",
             ("number", "\\e]0;owned\\x07"),
             "terminal escapes (ESC, BEL) in the invoice number, echoed escaped"),
        Case("json-c1-number.json", js(lambda d: d.__setitem__("number", "E1\x9b2J")),
             "rejected", ("number", "\\x9b"), "a C1 control (CSI) in the invoice number"),
        Case("json-markup-number.json", js(lambda d: d.__setitem__("number", "E[/x]1")),
             "accepted", ("E_x_1",), "console markup in the invoice number: plain text"),
        Case("json-number-collide.json", json.dumps([
            {**base_json(), "number": "2026/5"}, {**base_json(), "number": "2026_5"}]).encode(),
             "accepted", ("2026_5.json", "2026_5-"),
             "two numbers that clean up to the same file name: both kept, names differ"),
        Case("json-empty.json", b"", "rejected", ("JSON",), "an empty file"),
        Case("json-scalar.json", b'"just a string"', "rejected", ("not a JSON object",),
             "a JSON string instead of an invoice"),
        Case("json-garbage.json", bytes(range(256)) * 4, "rejected", (),
             "binary garbage named .json"),
    ]


def pdf_cases(pdf: bytes, cii: bytes) -> list[Case]:
    import pikepdf

    def with_attachment(name: str, content: bytes, *, encrypt: bool = False) -> bytes:
        with pikepdf.open(io.BytesIO(pdf)) as doc:
            for existing in list(doc.attachments):
                del doc.attachments[existing]
            doc.attachments[name] = pikepdf.AttachedFileSpec(doc, content, mime_type="text/xml")
            out = io.BytesIO()
            if encrypt:
                doc.save(out, encryption=pikepdf.Encryption(owner="o", user="secret"))
            else:
                doc.save(out)
            return out.getvalue()

    def truncated(data: bytes) -> bytes:
        """Cut so that the embedded XML is gone: pikepdf repairs a damaged PDF, so a cut
        after the attachment would (rightly) still be read."""
        cut = len(data) // 3
        while cut > 16:
            try:
                with pikepdf.open(io.BytesIO(data[:cut])) as doc:
                    if not len(doc.attachments):
                        return data[:cut]
            except pikepdf.PdfError:
                return data[:cut]
            cut //= 2
        return data[:cut]

    cii_body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", cii)
    xxe = XXE + cii_body.replace(b"<ram:ID>E2611-00123</ram:ID>", b"<ram:ID>&xxe;</ram:ID>", 1)
    laughs = LAUGHS.replace(b"lol9", b"xxe") + cii_body.replace(
        b"<ram:ID>E2611-00123</ram:ID>", b"<ram:ID>&xxe;</ram:ID>", 1)
    return [
        Case("pdf-truncated.pdf", truncated(pdf), "rejected", (),
             "cut off before the embedded invoice"),
        Case("pdf-header-only.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "rejected",
             ("not a readable PDF",),
             "a PDF header and nothing else"),
        Case("pdf-garbage.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 64, "rejected",
             ("not a readable PDF",),
             "garbage after a PDF header"),
        Case("pdf-no-xml.pdf", with_attachment("readme.txt", b"hello"), "rejected",
             ("factur-x.xml",), "a PDF without the embedded invoice XML"),
        Case("pdf-xxe.pdf", with_attachment("factur-x.xml", xxe), "rejected", ("DOCTYPE",),
             "embedded XML with an external entity"),
        Case("pdf-billion-laughs.pdf", with_attachment("factur-x.xml", laughs), "rejected",
             ("DOCTYPE",), "embedded XML with exponential entities"),
        Case("pdf-embedded-garbage.pdf", with_attachment("factur-x.xml", b"\x00\x01not xml"),
             "rejected", ("well-formed",), "embedded 'XML' that is not XML"),
        Case("pdf-feb-30.pdf", with_attachment("factur-x.xml", cii.replace(
            b'format="102">20261104<', b'format="102">20260230<', 1)), "rejected", ("issue_date",),
             "embedded invoice with issue date 2026-02-30"),
        Case("pdf-encrypted.pdf", with_attachment("factur-x.xml", cii, encrypt=True),
             "rejected", ("encrypted",), "an encrypted PDF (password needed)"),
    ]


def all_cases() -> list[Case]:
    cii = render("cii")
    return [*json_cases(), *csv_cases(render("csv")), *xml_cases("ubl", render("ubl")),
            *xml_cases("cii", cii), *pdf_cases(render("facturx"), cii)]


def _many_lines(directory: Path, count: int) -> Path:
    """The example invoice with its line ``count`` times (numbered), as a JSON file."""
    data = base_json()
    data["number"] = f"E2611-{count:05d}"
    data["lines"] = [{**data["lines"][0], "id": str(i + 1)} for i in range(count)]
    path = directory / f"json-{count}-lines.json"
    path.write_bytes(json.dumps(data).encode())
    return path


def make_big(directory: Path) -> list[Case]:
    """The cases too big to commit, written into ``directory``; returns their manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    cases = []
    # 200 MB: a valid JSON invoice padded with a huge note.
    path = directory / "json-200mb.json"
    data = base_json()
    data["notes"] = [{"text": "@PAD@"}]
    before, after = json.dumps(data).encode().split(b"@PAD@")
    with path.open("wb") as fh:  # in 1 MiB pieces: the test itself stays small in memory
        fh.write(before)
        for _ in range(200):
            fh.write(b"x" * 2**20)
        fh.write(after)
    cases.append(Case(path.name, b"", "rejected", ("MiB",), "a 200 MB file"))
    ubl = render("ubl")
    path = directory / "ubl-200mb.xml"
    with path.open("wb") as fh:
        head, tail = ubl.split(b"</cbc:ID>", 1)
        fh.write(head + b"</cbc:ID>")
        chunk = b"<!--" + b"x" * (2**20 - 7) + b"-->"
        for _ in range(200):
            fh.write(chunk)
        fh.write(tail)
    cases.append(Case(path.name, b"", "rejected", ("limit",), "a 200 MB XML file"))
    data = base_json()
    data["buyer"]["name"] = "A" * 5_000_000
    path = directory / "json-5mb-name.json"
    path.write_bytes(json.dumps(data).encode())
    cases.append(Case(path.name, b"", "rejected", ("buyer.name",), "a 5 MB buyer name"))
    csv = render("csv")
    head, body = csv.split(b"\n", 1)
    path = directory / "csv-10mb-field.csv"
    path.write_bytes(head + b"\n" + body.replace(b"Elektroener", b"A" * 10_000_000, 1))
    cases.append(Case(path.name, b"", "rejected", (), "a 10 MB text field"))
    # One line over the default limit: refused before the lines are built.
    path = _many_lines(directory, 1_001)
    cases.append(Case(path.name, b"", "rejected", ("lines", "limits.lines_per_invoice"),
                      "1,001 lines in one invoice, one over the default limit"))
    # 200,000 line rows of one CSV invoice: refused, read with the rows of one invoice.
    csv_head, csv_row = render("csv").split(b"\n")[:2]
    path = directory / "csv-200000-rows.csv"
    with path.open("wb") as fh:
        fh.write(csv_head + b"\n")
        for _ in range(200_000):
            fh.write(csv_row + b"\n")
    cases.append(Case(path.name, b"", "rejected", ("rows_per_csv_invoice", "E2611-00123"),
                      "200,000 line rows of one invoice in a CSV"))
    # 1,000 lines (the default limit), valid: accepted.
    path = _many_lines(directory, 1_000)
    cases.append(Case(path.name, b"", "accepted", (), "a 1,000-line invoice"))
    return cases


def main() -> None:
    FILES.mkdir(exist_ok=True)
    for old in FILES.iterdir():
        old.unlink()
    cases = all_cases()
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    manifest = []
    for case in cases:
        (FILES / case.name).write_bytes(case.data)
        manifest.append({"file": case.name, "expect": case.expect,
                         "mentions": list(case.mentions), "why": case.why})
    MANIFEST.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {FILES}", file=sys.stderr)


if __name__ == "__main__":
    main()
