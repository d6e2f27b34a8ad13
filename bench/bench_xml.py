"""Benchmark: UBL/CII rendering and validation, against drafthorse and a plain lxml builder.

    python3 bench/bench_xml.py [--min-time 2] [--batch 10000] [--validate-batch 10000]

All cases use the same invoices: the gateway's business electricity invoice
(examples/electricity-business.json) with its lines repeated to 3, 10, 500 or 5,000
lines, completed once by the core. Each case runs in a fresh interpreter, so its peak
resident memory (VmHWM) is its own, and compiled schemas are warmed up before timing.

Rendering (invoices per second, from the completed model to UTF-8 bytes):

* ``render ubl`` / ``render cii``: the plugin's formats;
* ``lxml by hand (cii)``: the same CII document written as one flat function of
  ``etree.SubElement`` calls with no helpers and no options, byte-identical to the
  plugin's output (checked) — the practical ceiling for building this XML in Python;
* ``drafthorse (cii)``: the peer. The invoice is mapped onto drafthorse's model and
  serialised with ``ET.tostring(doc.to_etree())`` (no schema check, like ours);
  ``drafthorse + xsd`` is its documented ``Document.serialize(schema=...)``, which also
  validates against its Factur-X EN16931 XSD.

Validation (documents per second, 10-line UBL and CII): ``xsd`` (lxml, schema loaded
once), ``schematron`` (EN 16931 + Peppol XSLTs by Saxon, compiled once), ``full``
(``Format.validate``: parse + XSD + EN 16931 + Peppol). Scaling: ``full`` on 10 to
5,000 lines (seconds per document). Batches: resident memory after 10%, 50% and 100% of
a batch of renders (``--batch``) and of full validations (``--validate-batch``),
10,000 each by default.

Prints a table and writes bench/results/xml.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RENDER_CASES = ("render-ubl", "render-cii", "lxml-cii", "drafthorse-cii", "drafthorse-xsd-cii")
VALIDATE_CASES = ("xsd-ubl", "schematron-ubl", "full-ubl", "xsd-cii", "schematron-cii",
                  "full-cii")
SCALING_LINES = (10, 100, 1000, 5000)


def peak_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def invoice(lines: int, number: str = "E2611-00125") -> Any:
    from gateway import complete, load_invoice

    data = json.loads((REPO / "examples" / "electricity-business.json").read_text("utf-8"))
    templates = data["lines"]
    data["lines"] = []
    for i in range(lines):
        line = copy.deepcopy(templates[i % len(templates)])
        line["id"] = str(i + 1)
        line["quantity"] = str(Decimal(line["quantity"]) + i % 7)
        data["lines"].append(line)
    data["number"] = number
    return complete(load_invoice(data))


def rate(fn: Callable[[], Any], min_time: float) -> tuple[float, float, int]:
    """Operations per second of ``fn`` over at least ``min_time`` seconds: by the wall
    clock, and by this process's CPU time (what one core does, whatever the load)."""
    fn()
    runs, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and runs >= 3:
            return runs / elapsed, runs / (time.process_time() - cpu), runs


# --------------------------------------------------------------------------- peers


def lxml_by_hand_cii(inv: Any) -> bytes:
    """The plugin's CII for this invoice, written out flat: no helpers, no options."""
    from lxml import etree

    rsm = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    ram = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
    udt = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
    qdt = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
    r = "{" + rsm + "}"
    sub = etree.SubElement
    t = inv.require_totals()

    def txt(parent: Any, name: str, value: str, attrs: dict[str, str] | None = None) -> Any:
        el = sub(parent, ram + name, attrs) if attrs else sub(parent, ram + name)
        el.text = value
        return el

    def date(parent: Any, name: str, value: Any) -> None:
        el = sub(sub(parent, ram + name), "{" + udt + "}DateTimeString", {"format": "102"})
        el.text = value.strftime("%Y%m%d")

    def party(parent: Any, name: str, p: Any) -> None:
        el = sub(parent, ram + name)
        txt(el, "Name", p.name)
        legal = sub(el, ram + "SpecifiedLegalOrganization")
        txt(legal, "ID", p.legal_registration_id.value,
            {"schemeID": p.legal_registration_id.scheme})
        if p.trading_name:
            txt(legal, "TradingBusinessName", p.trading_name)
        contact = sub(el, ram + "DefinedTradeContact")
        if p.contact.name:
            txt(contact, "PersonName", p.contact.name)
        if p.contact.telephone:
            txt(sub(contact, ram + "TelephoneUniversalCommunication"), "CompleteNumber",
                p.contact.telephone)
        txt(sub(contact, ram + "EmailURIUniversalCommunication"), "URIID", p.contact.email)
        addr = sub(el, ram + "PostalTradeAddress")
        txt(addr, "PostcodeCode", p.address.postal_code)
        txt(addr, "LineOne", p.address.line1)
        txt(addr, "CityName", p.address.city)
        txt(addr, "CountryID", p.address.country)
        txt(sub(el, ram + "URIUniversalCommunication"), "URIID", p.electronic_address.value,
            {"schemeID": p.electronic_address.scheme})
        txt(sub(el, ram + "SpecifiedTaxRegistration"), "ID", p.vat_id, {"schemeID": "VA"})

    root = etree.Element(r + "CrossIndustryInvoice",
                         nsmap={"rsm": rsm, "ram": ram[1:-1], "qdt": qdt, "udt": udt})
    ctx = sub(root, r + "ExchangedDocumentContext")
    txt(sub(ctx, ram + "GuidelineSpecifiedDocumentContextParameter"), "ID",
        "urn:cen.eu:en16931:2017")
    doc = sub(root, r + "ExchangedDocument")
    txt(doc, "ID", inv.number)
    txt(doc, "TypeCode", inv.type_code)
    date(doc, "IssueDateTime", inv.issue_date)
    for note in inv.notes:
        txt(sub(doc, ram + "IncludedNote"), "Content", note.text)
    tx = sub(root, r + "SupplyChainTradeTransaction")
    for line in inv.lines:
        item = sub(tx, ram + "IncludedSupplyChainTradeLineItem")
        txt(sub(item, ram + "AssociatedDocumentLineDocument"), "LineID", line.id)
        product = sub(item, ram + "SpecifiedTradeProduct")
        if line.item.sellers_id:
            txt(product, "SellerAssignedID", line.item.sellers_id)
        txt(product, "Name", line.item.name)
        if line.item.description:
            txt(product, "Description", line.item.description)
        agreement = sub(item, ram + "SpecifiedLineTradeAgreement")
        txt(sub(agreement, ram + "NetPriceProductTradePrice"), "ChargeAmount",
            _number(line.price.net))
        txt(sub(item, ram + "SpecifiedLineTradeDelivery"), "BilledQuantity",
            _number(line.quantity), {"unitCode": line.unit})
        settlement = sub(item, ram + "SpecifiedLineTradeSettlement")
        tax = sub(settlement, ram + "ApplicableTradeTax")
        txt(tax, "TypeCode", "VAT")
        txt(tax, "CategoryCode", line.vat.category.value)
        txt(tax, "RateApplicablePercent", _number(line.vat.rate))
        txt(sub(settlement, ram + "SpecifiedTradeSettlementLineMonetarySummation"),
            "LineTotalAmount", f"{line.net_amount:.2f}")
    agreement = sub(tx, ram + "ApplicableHeaderTradeAgreement")
    txt(agreement, "BuyerReference", inv.buyer_reference)
    party(agreement, "SellerTradeParty", inv.seller)
    party(agreement, "BuyerTradeParty", inv.buyer)
    txt(sub(agreement, ram + "BuyerOrderReferencedDocument"), "IssuerAssignedID",
        inv.purchase_order_reference)
    txt(sub(agreement, ram + "ContractReferencedDocument"), "IssuerAssignedID",
        inv.contract_reference)
    ref = sub(agreement, ram + "AdditionalReferencedDocument")
    txt(ref, "IssuerAssignedID", inv.invoiced_object.value)
    txt(ref, "TypeCode", "130")
    txt(ref, "ReferenceTypeCode", inv.invoiced_object.scheme)
    sub(tx, ram + "ApplicableHeaderTradeDelivery")
    settlement = sub(tx, ram + "ApplicableHeaderTradeSettlement")
    txt(settlement, "PaymentReference", inv.payment.remittance_information)
    txt(settlement, "InvoiceCurrencyCode", inv.currency)
    means = sub(settlement, ram + "SpecifiedTradeSettlementPaymentMeans")
    txt(means, "TypeCode", inv.payment.means_code)
    txt(means, "Information", inv.payment.means_text)
    account = inv.payment.credit_transfers[0]
    fin = sub(means, ram + "PayeePartyCreditorFinancialAccount")
    txt(fin, "IBANID", account.account_id)
    txt(fin, "AccountName", account.account_name)
    txt(sub(means, ram + "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", account.bic)
    for b in inv.vat_breakdown:
        tax = sub(settlement, ram + "ApplicableTradeTax")
        txt(tax, "CalculatedAmount", f"{b.tax_amount:.2f}")
        txt(tax, "TypeCode", "VAT")
        txt(tax, "BasisAmount", f"{b.taxable_amount:.2f}")
        txt(tax, "CategoryCode", b.category.value)
        txt(tax, "RateApplicablePercent", _number(b.rate))
    period = sub(settlement, ram + "BillingSpecifiedPeriod")
    date(period, "StartDateTime", inv.invoice_period.start)
    date(period, "EndDateTime", inv.invoice_period.end)
    terms = sub(settlement, ram + "SpecifiedTradePaymentTerms")
    txt(terms, "Description", inv.payment_terms)
    date(terms, "DueDateDateTime", inv.due_date)
    s = sub(settlement, ram + "SpecifiedTradeSettlementHeaderMonetarySummation")
    txt(s, "LineTotalAmount", f"{t.line_net_total:.2f}")
    txt(s, "TaxBasisTotalAmount", f"{t.total_without_vat:.2f}")
    txt(s, "TaxTotalAmount", f"{t.vat_total:.2f}", {"currencyID": inv.currency})
    txt(s, "GrandTotalAmount", f"{t.total_with_vat:.2f}")
    txt(s, "DuePayableAmount", f"{t.amount_due:.2f}")
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + etree.tostring(root, encoding="UTF-8", pretty_print=True))


def _number(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def drafthorse_document(inv: Any) -> Any:
    """The same invoice on drafthorse's model (every term the plugin writes for it)."""
    from drafthorse.models.accounting import ApplicableTradeTax
    from drafthorse.models.document import Document
    from drafthorse.models.note import IncludedNote
    from drafthorse.models.party import TaxRegistration
    from drafthorse.models.payment import PaymentMeans, PaymentTerms
    from drafthorse.models.references import AdditionalReferencedDocument
    from drafthorse.models.tradelines import LineItem

    t = inv.require_totals()
    doc = Document()
    doc.context.guideline_parameter.id = "urn:cen.eu:en16931:2017"
    doc.header.id = inv.number
    doc.header.type_code = inv.type_code
    doc.header.issue_date_time = inv.issue_date
    for note in inv.notes:
        doc.header.notes.add(IncludedNote(content=note.text))
    agreement = doc.trade.agreement
    agreement.buyer_reference = inv.buyer_reference
    for target, p in ((agreement.seller, inv.seller), (agreement.buyer, inv.buyer)):
        target.name = p.name
        target.legal_organization.id = (p.legal_registration_id.scheme,
                                        p.legal_registration_id.value)
        if p.trading_name:
            target.legal_organization.trade_name = p.trading_name
        if p.contact.name:
            target.contact.person_name = p.contact.name
        if p.contact.telephone:
            target.contact.telephone.number = p.contact.telephone
        target.contact.email.address = p.contact.email
        target.address.postcode = p.address.postal_code
        target.address.line_one = p.address.line1
        target.address.city_name = p.address.city
        target.address.country_id = p.address.country
        target.electronic_address.uri_ID = (p.electronic_address.scheme,
                                            p.electronic_address.value)
        target.tax_registrations.add(TaxRegistration(id=("VA", p.vat_id)))
    agreement.buyer_order.issuer_assigned_id = inv.purchase_order_reference
    agreement.contract.issuer_assigned_id = inv.contract_reference
    ref = AdditionalReferencedDocument()
    ref.issuer_assigned_id = inv.invoiced_object.value
    ref.type_code = "130"
    agreement.additional_references.add(ref)
    for line in inv.lines:
        li = LineItem()
        li.document.line_id = line.id
        if line.item.sellers_id:
            li.product.seller_assigned_id = line.item.sellers_id
        li.product.name = line.item.name
        if line.item.description:
            li.product.description = line.item.description
        li.agreement.net.amount = line.price.net
        li.delivery.billed_quantity = (line.quantity, line.unit)
        li.settlement.trade_tax.type_code = "VAT"
        li.settlement.trade_tax.category_code = line.vat.category.value
        li.settlement.trade_tax.rate_applicable_percent = line.vat.rate
        li.settlement.monetary_summation.total_amount = line.net_amount
        doc.trade.items.add(li)
    settlement = doc.trade.settlement
    settlement.payment_reference = inv.payment.remittance_information
    settlement.currency_code = inv.currency
    means = PaymentMeans()
    means.type_code = inv.payment.means_code
    means.information.add(inv.payment.means_text)
    account = inv.payment.credit_transfers[0]
    means.payee_account.iban = account.account_id
    means.payee_account.account_name = account.account_name
    means.payee_institution.bic = account.bic
    settlement.payment_means.add(means)
    for b in inv.vat_breakdown:
        tax = ApplicableTradeTax()
        tax.calculated_amount = b.tax_amount
        tax.type_code = "VAT"
        tax.basis_amount = b.taxable_amount
        tax.category_code = b.category.value
        tax.rate_applicable_percent = b.rate
        settlement.trade_tax.add(tax)
    settlement.period.start = inv.invoice_period.start
    settlement.period.end = inv.invoice_period.end
    terms = PaymentTerms()
    terms.description = inv.payment_terms
    terms.due = inv.due_date
    settlement.terms.add(terms)
    s = settlement.monetary_summation
    s.line_total = t.line_net_total
    s.tax_basis_total = t.total_without_vat
    s.tax_total = (t.vat_total, inv.currency)
    s.grand_total = t.total_with_vat
    s.due_amount = t.amount_due
    return doc


def drafthorse_bytes(inv: Any, *, validate: bool) -> bytes:
    import xml.etree.ElementTree as ET

    doc = drafthorse_document(inv)
    if validate:
        return doc.serialize(schema="FACTUR-X_EN16931")
    return ET.tostring(doc.to_etree(), "utf-8")


# --------------------------------------------------------------------------- cases


def run_render_case(case: str, lines: int, min_time: float) -> dict[str, Any]:
    from gateway import RenderContext
    from plugins.xml_einvoice import CiiFormat, UblFormat

    inv = invoice(lines)
    ctx = RenderContext()
    ubl, cii = UblFormat(), CiiFormat()
    fn: Callable[[], bytes] = {
        "render-ubl": lambda: ubl.render(inv, ctx),
        "render-cii": lambda: cii.render(inv, ctx),
        "lxml-cii": lambda: lxml_by_hand_cii(inv),
        "drafthorse-cii": lambda: drafthorse_bytes(inv, validate=False),
        "drafthorse-xsd-cii": lambda: drafthorse_bytes(inv, validate=True),
    }[case]
    if case == "lxml-cii" and fn() != cii.render(inv, ctx):
        raise SystemExit("the hand-written builder no longer matches the plugin's CII")
    if case.startswith("drafthorse"):
        assert b"CrossIndustryInvoice" in fn()
    per_sec, cpu_per_sec, runs = rate(fn, min_time)
    return {"case": case, "lines": lines, "per_sec": per_sec, "cpu_per_sec": cpu_per_sec,
            "runs": runs,
            "bytes": len(fn()), "peak_mb": peak_mb()}


def run_validate_case(case: str, lines: int, min_time: float) -> dict[str, Any]:
    from gateway import RenderContext
    from plugins.xml_einvoice import CiiFormat, UblFormat
    from plugins.xml_einvoice.safexml import parse_untrusted
    from plugins.xml_einvoice.validation import kind_of, validator

    kind_name, _, syntax = case.rpartition("-")
    fmt = UblFormat() if syntax == "ubl" else CiiFormat()
    fmt.warm_up()
    data = fmt.render(invoice(lines), RenderContext())
    v = validator()
    root = parse_untrusted(data, "bench")
    kind = kind_of(root)
    assert kind is not None
    fn: Callable[[], Any] = {
        "xsd": lambda: v.check_xsd(parse_untrusted(data, "bench"), kind),
        "schematron": lambda: v.check_schematron(data, root, kind),
        "full": lambda: fmt.validate(data),
    }[kind_name]
    assert [f for f in fmt.validate(data) if f.fatal] == []
    per_sec, cpu_per_sec, runs = rate(fn, min_time)
    return {"case": case, "lines": lines, "per_sec": per_sec, "cpu_per_sec": cpu_per_sec,
            "runs": runs,
            "bytes": len(data), "peak_mb": peak_mb()}


def run_scaling_case(lines: int) -> dict[str, Any]:
    from gateway import RenderContext
    from plugins.xml_einvoice import UblFormat

    fmt = UblFormat()
    fmt.warm_up()
    data = fmt.render(invoice(lines), RenderContext())
    fmt.validate(fmt.render(invoice(10), RenderContext()))  # first-document costs, untimed
    runs = 3 if lines <= 1000 else 1
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(runs):
        findings = fmt.validate(data)
    seconds = (time.perf_counter() - start) / runs
    cpu_seconds = (time.process_time() - cpu) / runs
    assert [f for f in findings if f.fatal] == []
    return {"case": "full-ubl-scaling", "lines": lines, "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "bytes": len(data), "peak_mb": peak_mb()}


def run_batch_case(kind: str, size: int) -> dict[str, Any]:
    from gateway import RenderContext
    from plugins.xml_einvoice import UblFormat

    fmt = UblFormat()
    base = invoice(3)
    ctx = RenderContext()
    if kind == "validate":
        fmt.warm_up()
        data = fmt.render(base, ctx)
    checkpoints: dict[str, float] = {}
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(size):
        if kind == "render":
            fmt.render(base.model_copy(update={"number": f"E-{i:06d}"}), ctx)
        else:
            fmt.validate(data.replace(b"E2611-00125", f"E-{i:06d}".encode(), 1))
        if i + 1 in (size // 10, size // 2, size):
            gc.collect()
            checkpoints[str(i + 1)] = rss_mb()
    elapsed = time.perf_counter() - start
    return {"case": f"batch-{kind}", "size": size, "per_sec": size / elapsed,
            "cpu_per_sec": size / (time.process_time() - cpu),
            "rss_mb": checkpoints, "peak_mb": peak_mb()}


def child(args: argparse.Namespace) -> None:
    kind, _, rest = args.case.partition(":")
    if kind == "render":
        case, lines = rest.rsplit(":", 1)
        result = run_render_case(case, int(lines), args.min_time)
    elif kind == "validate":
        case, lines = rest.rsplit(":", 1)
        result = run_validate_case(case, int(lines), args.min_time)
    elif kind == "scaling":
        result = run_scaling_case(int(rest))
    else:
        which, size = rest.split(":")
        result = run_batch_case(which, int(size))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-time", type=float, default=2.0,
                        help="seconds per timed case (default 2)")
    parser.add_argument("--batch", type=int, default=10_000, help="renders in the batch case")
    parser.add_argument("--validate-batch", type=int, default=10_000,
                        help="full validations in the batch case")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        child(args)
        return

    cases = [f"render:{c}:{n}" for n in (3, 500) for c in RENDER_CASES]
    cases += [f"validate:{c}:10" for c in VALIDATE_CASES]
    cases += [f"scaling:{n}" for n in SCALING_LINES]
    cases += [f"batch:render:{args.batch}", f"batch:validate:{args.validate_batch}"]
    results = []
    for case in cases:
        print(f"… {case}", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--case", case,
                              "--min-time", str(args.min_time)],
                             capture_output=True, text=True, check=False, cwd=REPO)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            raise SystemExit(f"case {case} failed")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    report(results, args)


def _pair(r: dict[str, Any], decimals: int) -> str:
    return f"{r['per_sec']:,.{decimals}f} [{r['cpu_per_sec']:,.{decimals}f}]"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    by = {(r["case"], r.get("lines", r.get("size"))): r for r in results}
    print(f"\nXML e-invoice benchmark — {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, one core per case\n")
    print("invoices or documents per second by the wall clock, [per CPU-second of the "
          "process] in brackets\n")
    print(f"{'render (invoices/s)':34} {'3 lines':>20} {'500 lines':>20} {'peak MB':>9}")
    labels = {"render-ubl": "render ubl (plugin)", "render-cii": "render cii (plugin)",
              "lxml-cii": "lxml by hand (cii, ceiling)", "drafthorse-cii": "drafthorse (cii)",
              "drafthorse-xsd-cii": "drafthorse + its xsd (cii)"}
    for case in RENDER_CASES:
        small, big = by[(case, 3)], by[(case, 500)]
        print(f"{labels[case]:34} {_pair(small, 0):>20} {_pair(big, 1):>20} "
              f"{max(small['peak_mb'], big['peak_mb']):9.0f}")
    ratios = {}
    for n in (3, 500):
        cii = by[("render-cii", n)]["cpu_per_sec"]
        ratios[n] = {"vs_drafthorse": cii / by[("drafthorse-cii", n)]["cpu_per_sec"],
                     "vs_lxml_by_hand": by[("lxml-cii", n)]["cpu_per_sec"] / cii}
        print(f"  cii, {n} lines: {ratios[n]['vs_drafthorse']:.1f}x drafthorse; "
              f"hand-written lxml is {ratios[n]['vs_lxml_by_hand']:.2f}x faster than the plugin")
    print(f"\n{'validate, 10 lines (documents/s)':34} {'ubl':>20} {'cii':>20}")
    for kind in ("xsd", "schematron", "full"):
        print(f"{kind:34} {_pair(by[(f'{kind}-ubl', 10)], 1):>20} "
              f"{_pair(by[(f'{kind}-cii', 10)], 1):>20}")
    print(f"\n{'full ubl validation vs lines':34} {'seconds':>12} {'CPU s':>9} "
          f"{'CPU ms/line':>12} {'peak MB':>9}")
    for n in SCALING_LINES:
        r = by[("full-ubl-scaling", n)]
        print(f"{n:34,} {r['seconds']:12.3f} {r['cpu_seconds']:9.3f} "
              f"{1000 * r['cpu_seconds'] / n:12.3f} {r['peak_mb']:9.0f}")
    print(f"\n{'batch':34} {'per second':>20} {'RSS at 10%':>12} {'at 50%':>9} "
          f"{'at 100%':>9}")
    for kind, size in (("render", args.batch), ("validate", args.validate_batch)):
        r = by[(f"batch-{kind}", size)]
        points = list(r["rss_mb"].values())
        print(f"{kind + f' x {size:,}':34} {_pair(r, 0):>20} {points[0]:11.0f}M "
              f"{points[1]:8.0f}M {points[-1]:8.0f}M")
    target = REPO / "bench" / "results" / "xml.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"python": platform.python_version(), "cpus": os.cpu_count(),
               "min_time": args.min_time, "results": results,
               "ratios": {str(k): v for k, v in ratios.items()}}
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    print(f"\nwrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
