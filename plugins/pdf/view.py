"""What the template shows: an invoice turned into ready-formatted strings.

Templates only place values; every decision (which title, whether a QR code can be
paid, how an amount reads in this locale) is made here, so an integrator overriding
the template cannot get the numbers wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway import Invoice

from .i18n import Messages, note_markers
from .qr import epc_payload, qr_code, qr_svg, qr_svg_data_uri


@dataclass(frozen=True)
class Row:
    number: str
    name: str
    description: str
    quantity: str
    unit: str
    unit_price: str
    vat_rate: str
    net_amount: str
    period: str = ""


@dataclass(frozen=True)
class PartyView:
    name: str
    address_lines: list[str]
    registration: str = ""
    vat_id: str = ""
    phone: str = ""
    email: str = ""


@dataclass
class InvoiceView:
    t: Messages
    number: str
    title: str
    is_credit_note: bool
    meta: list[tuple[str, str]]
    seller: PartyView
    buyer: PartyView
    lines: list[Row]
    charges: list[tuple[str, str, str, str]]  # label, reason, vat rate, amount
    vat: list[tuple[str, str, str, str]]  # category, rate, taxable, tax
    totals: list[tuple[str, str, bool]]  # label, value, emphasised
    amount_due: str
    due_date: str
    payee: str
    iban: str
    bic: str
    reference: str
    payment_hint: str
    notes: list[str]
    payment_terms: str
    currency: str
    extra: dict[str, Any] = field(default_factory=dict)
    qr_svg: str | None = None  # the EPC QR code as SVG text (Typst takes it as data)

    @property
    def qr(self) -> str | None:
        """The QR code as an SVG data URI, for HTML templates; made when a template asks
        for it (the Typst engine never does)."""
        return qr_svg_data_uri(self.qr_svg) if self.qr_svg else None


def _address(party: Any) -> list[str]:
    a = party.address
    city = " ".join(x for x in (a.city, a.postal_code) if x)
    lines = [x for x in (a.line1, a.line2, a.line3) if x]
    if city:
        lines.append(city + ("" if a.country == "LV" else f", {a.country}"))
    elif a.country:
        lines.append(a.country)
    return lines


def _party(party: Any) -> PartyView:
    reg = party.legal_registration_id.value if party.legal_registration_id else ""
    contact = party.contact
    return PartyView(
        name=party.name, address_lines=_address(party), registration=reg,
        vat_id=party.vat_id or "",
        phone=(contact.telephone or "") if contact else "",
        email=(contact.email or "") if contact else "")


def _period(t: Messages, period: Any) -> str:
    if period is None or (period.start is None and period.end is None):
        return ""
    return f"{t.date(period.start)} – {t.date(period.end)}"


def build_view(invoice: Invoice, t: Messages, extra: dict[str, Any] | None = None) -> InvoiceView:
    """Format a completed invoice (see :func:`gateway.complete`) for the template."""
    totals = invoice.require_totals()
    cur = invoice.currency
    credit = invoice.is_credit_note
    label = t.label
    meta: list[tuple[str, str]] = [
        (label.credit_note_number if credit else label.invoice_number, invoice.number),
        (label.issue_date, t.date(invoice.issue_date)),
    ]
    if period := _period(t, invoice.invoice_period):
        meta.append((label.billing_period, period))
    if invoice.due_date and not credit:
        meta.append((label.due_date, t.date(invoice.due_date)))
    if invoice.contract_reference:
        meta.append((label.contract, invoice.contract_reference))
    if invoice.buyer_reference and invoice.buyer_reference != invoice.contract_reference:
        meta.append((label.customer_number, invoice.buyer_reference))
    if invoice.invoiced_object:
        meta.append((label.invoiced_object, invoice.invoiced_object.value))
    if invoice.purchase_order_reference:
        meta.append((label.order_reference, invoice.purchase_order_reference))
    for preceding in invoice.preceding_invoices:
        when = f" ({t.date(preceding.issue_date)})" if preceding.issue_date else ""
        meta.append((label.preceding_invoice, preceding.number + when))

    rows = [
        Row(number=line.id, name=line.item.name, description=line.item.description or "",
            quantity=t.quantity(line.quantity), unit=t.unit(line.unit),
            unit_price=t.price(line.price.net), vat_rate=t.percent(line.vat.rate),
            net_amount=t.amount(line.net_amount), period=_period(t, line.period))
        for line in invoice.lines
    ]
    charges = [
        (t.lines.charge, c.reason or "", t.percent(c.vat_rate), t.amount(c.amount))
        for c in invoice.charges
    ] + [
        (t.lines.allowance, a.reason or "", t.percent(a.vat_rate), t.amount(-a.amount))
        for a in invoice.allowances
    ]
    vat = [
        (t.vat_category.get(v.category.value, v.category.value)
         + (f" – {v.exemption_reason}" if v.exemption_reason else ""),
         t.percent(v.rate), t.money(v.taxable_amount, cur), t.money(v.tax_amount, cur))
        for v in invoice.vat_breakdown
    ]
    tl = t.totals
    total_rows: list[tuple[str, str, bool]] = []
    if invoice.charges or invoice.allowances:
        total_rows.append((tl.line_net_total, t.money(totals.line_net_total, cur), False))
        if totals.allowances_total:
            total_rows.append((tl.allowances_total, t.money(-totals.allowances_total, cur),
                               False))
        if totals.charges_total:
            total_rows.append((tl.charges_total, t.money(totals.charges_total, cur), False))
    total_rows += [
        (tl.total_without_vat, t.money(totals.total_without_vat, cur), False),
        (tl.vat_total, t.money(totals.vat_total or Decimal("0"), cur), False),
        (tl.total_with_vat, t.money(totals.total_with_vat, cur), True),
    ]
    if totals.paid_amount:
        total_rows.append((tl.paid_amount, t.money(-totals.paid_amount, cur), False))
    if totals.rounding_amount:
        total_rows.append((tl.rounding_amount, t.money(totals.rounding_amount, cur), False))

    transfer = invoice.payment.credit_transfers[0] if invoice.payment and \
        invoice.payment.credit_transfers else None
    payee = (invoice.payee.name if invoice.payee else None) or \
        (transfer.account_name if transfer and transfer.account_name else None) or \
        invoice.seller.name
    reference = invoice.payment_reference or invoice.number
    svg = None
    if transfer and not credit:
        payload = epc_payload(name=payee, iban=transfer.account_id, amount=totals.amount_due,
                              currency=cur, reference=reference, bic=transfer.bic)
        if payload:
            svg = qr_svg(qr_code(payload))
    if credit:
        hint = t.payment.credit_hint
    elif invoice.contract_reference:
        hint = t.payment.hint.format(number=invoice.number, contract=invoice.contract_reference)
    else:
        hint = t.payment.hint_no_contract.format(number=invoice.number)
    # The seller's own copy of the quote-your-references sentence would repeat the
    # payment hint word for word.
    hint_texts = {t.payment.hint, t.payment.hint_no_contract, hint}
    notes = [n.text for n in invoice.notes if not _same_sentence(n.text, hint_texts)]
    return InvoiceView(
        t=t, number=invoice.number,
        title=t.title.credit_note if credit else t.title.invoice,
        is_credit_note=credit, meta=meta, seller=_party(invoice.seller),
        buyer=_party(invoice.buyer), lines=rows, charges=charges, vat=vat, totals=total_rows,
        amount_due=t.money(totals.amount_due, cur),
        due_date=t.date(invoice.due_date) if not credit else "",
        payee=payee, iban=_group_iban(transfer.account_id) if transfer else "",
        bic=(transfer.bic or "") if transfer else "", reference=reference,
        payment_hint=hint, notes=notes, payment_terms=invoice.payment_terms or "",
        currency=cur, extra=dict(extra or {}), qr_svg=svg)


def _same_sentence(note: str, hints: set[str]) -> bool:
    """True when a note says what the payment hint says (the examples carry it as BT-22,
    in Latvian even for an English-speaking customer)."""
    key = note.casefold()
    return note in hints or any(m.casefold() in key for m in note_markers() if m)


def _group_iban(iban: str) -> str:
    compact = iban.replace(" ", "")
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
