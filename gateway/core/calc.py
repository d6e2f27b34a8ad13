"""EN 16931 calculation rules (BR-CO-*): line net amounts, VAT breakdown, totals.

All arithmetic is :class:`~decimal.Decimal` with half-up rounding to two decimals,
as the official schematron (``round(x * 100) div 100``) does.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from gateway.core.model import AllowanceCharge, Invoice, InvoiceLine, VatBreakdown, VatCategory

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal) -> Decimal:
    """Round to two decimals, half up (half away from zero, like XPath ``round``)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def total(amounts: Iterable[Decimal]) -> Decimal:
    return money(sum(amounts, ZERO))


def line_net_amount(line: InvoiceLine) -> Decimal:
    """BT-131 = quantity × (net price ÷ base quantity) + line charges − line allowances."""
    base = line.price.base_quantity or Decimal(1)
    amount = line.quantity * line.price.net / base
    amount += sum((c.amount for c in line.charges), ZERO)
    amount -= sum((a.amount for a in line.allowances), ZERO)
    return money(amount)


VatKey = tuple[VatCategory, Decimal | None]


def vat_key(category: VatCategory, rate: Decimal | None) -> VatKey:
    # "21" and "21.00" are the same rate; O (not subject) has no rate at all.
    if category == VatCategory.NOT_SUBJECT:
        return (category, None)
    return (category, (rate or Decimal(0)).normalize())


def _allowance_key(ac: AllowanceCharge) -> VatKey | None:
    return vat_key(ac.vat_category, ac.vat_rate) if ac.vat_category else None


def compute_vat_breakdown(invoice: Invoice, line_nets: list[Decimal]) -> list[VatBreakdown]:
    """BG-23 from the lines and document level allowances/charges (BR-CO-17, BR-S-08, ...).

    Exemption reasons cannot be derived, so they are taken from a stated breakdown
    of the same category and rate when there is one.
    """
    taxable: dict[VatKey, Decimal] = {}
    for line, net in zip(invoice.lines, line_nets, strict=True):
        key = vat_key(line.vat.category, line.vat.rate)
        taxable[key] = taxable.get(key, ZERO) + net
    for charge in invoice.charges:
        if (key := _allowance_key(charge)) is not None:
            taxable[key] = taxable.get(key, ZERO) + charge.amount
    for allowance in invoice.allowances:
        if (key := _allowance_key(allowance)) is not None:
            taxable[key] = taxable.get(key, ZERO) - allowance.amount

    stated = {vat_key(b.category, b.rate): b for b in invoice.vat_breakdown}
    breakdown = []
    for (category, rate), amount in taxable.items():
        rate_value = rate if rate is not None else Decimal(0)
        previous = stated.get((category, rate))
        breakdown.append(
            VatBreakdown(
                taxable_amount=money(amount),
                tax_amount=money(amount * rate_value / 100),
                category=category,
                rate=None if category == VatCategory.NOT_SUBJECT else _rate_out(rate_value),
                exemption_reason=previous.exemption_reason if previous else None,
                exemption_reason_code=previous.exemption_reason_code if previous else None,
            )
        )
    return breakdown


def _rate_out(rate: Decimal) -> Decimal:
    # Keep "21" as 21.00 rather than 2.1E+1 after normalize().
    return rate.quantize(Decimal("0.01")) if rate == rate.to_integral() else rate
