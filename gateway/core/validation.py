"""From untrusted input to a complete, checked invoice.

:func:`load_invoice` validates raw data against the model and turns pydantic's errors
into :class:`~gateway.errors.Finding` objects that name the field, its EN 16931 term and
the rule that requires it. :func:`complete` applies the calculation rules (BR-CO-*) and
the rules that span several fields, and returns the invoice with its line net amounts,
VAT breakdown and totals filled in.
"""

from __future__ import annotations

import types
import typing
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.core import limits
from gateway.core.calc import ZERO, compute_vat_breakdown, line_net_amount, money, total, vat_key
from gateway.core.model import Invoice, Totals, VatBreakdown, VatCategory
from gateway.core.text import quoted
from gateway.errors import Finding, InvoiceRejected

# BR-CO-17 / BR-x-08 accept a stated amount within one unit of the computed one; the
# stated figure then stands (other systems may round per line).
VAT_TOLERANCE = Decimal(1)
_NEEDS_EXEMPTION_REASON = {
    VatCategory.EXEMPT: "BR-E-10",
    VatCategory.REVERSE_CHARGE: "BR-AE-10",
    VatCategory.INTRA_COMMUNITY: "BR-IC-10",
    VatCategory.EXPORT: "BR-G-10",
    VatCategory.NOT_SUBJECT: "BR-O-10",
}
_RULE_PREFIX = {
    VatCategory.STANDARD: "BR-S",
    VatCategory.ZERO_RATED: "BR-Z",
    VatCategory.EXEMPT: "BR-E",
    VatCategory.REVERSE_CHARGE: "BR-AE",
    VatCategory.INTRA_COMMUNITY: "BR-IC",
    VatCategory.EXPORT: "BR-G",
    VatCategory.NOT_SUBJECT: "BR-O",
    VatCategory.CANARY_ISLANDS: "BR-IG",
    VatCategory.CEUTA_MELILLA: "BR-IP",
    VatCategory.SPLIT_PAYMENT: "BR-B",
}


# --------------------------------------------------------------------------- input


def load_invoice(data: Any, *, source: str | None = None) -> Invoice:
    """Validate ``data`` (a dict, or JSON text/bytes) as an :class:`Invoice`.

    Raises :class:`InvoiceRejected` with one finding per broken field.
    """
    if isinstance(data, dict) and isinstance(data.get("lines"), list):
        limits.check_lines(len(data["lines"]), number=_guess_number(data), source=source)
    try:
        if isinstance(data, str | bytes | bytearray):
            return Invoice.model_validate_json(data)
        return Invoice.model_validate(data)
    except ValidationError as exc:
        number = _guess_number(data)
        raise InvoiceRejected(
            findings_from_validation_error(exc, Invoice), invoice=number, source=source
        ) from None


def _guess_number(data: Any) -> str | None:
    if isinstance(data, dict):
        number = data.get("number")
        return str(number)[:64] if number is not None else None
    if isinstance(data, str | bytes | bytearray):
        import json

        try:
            parsed = json.loads(data)
        except ValueError:
            return None
        return _guess_number(parsed)
    return None


def findings_from_validation_error(exc: ValidationError, model: type[BaseModel]) -> list[Finding]:
    findings = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        bt, rule = _term_of(model, loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required but missing"
        elif error["type"] == "extra_forbidden":
            message = "is not a field of the invoice model (misspelt?)"
            rule = "GW-SCHEMA"
        elif "input" in error and error["type"] not in ("model_type", "list_type"):
            message = f"{message} (got {quoted(error['input'])})"
        findings.append(
            Finding(rule=rule or "GW-SCHEMA", path=format_path(loc), message=message, term=bt)
        )
    return findings


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first error of a settings or options model as (dotted location, message).

    Configuration errors are shown one at a time, as one line that names the key.
    """
    first = exc.errors(include_url=False)[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"].removeprefix("Value error, ")


def format_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _term_of(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str | None, str | None]:
    """Walk ``loc`` through the model classes; return the last field's (BT, rule)."""
    current: Any = model
    bt = rule = None
    for part in loc:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        field = current.model_fields.get(part)
        if field is None:
            break
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        bt = typing.cast(str | None, extra.get("bt"))
        rule = typing.cast(str | None, extra.get("rule"))
        current = _model_in(field.annotation)
    return bt, rule


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType) or origin is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- rules


def complete(invoice: Invoice, *, source: str | None = None) -> Invoice:
    """Check the cross-field rules and return the invoice with all computed terms.

    Stated totals and VAT breakdown must agree with the lines (BR-CO-10…17, BR-x-08);
    missing ones are computed. Raises :class:`InvoiceRejected` on any fatal finding.
    """
    findings: list[Finding] = []
    line_nets: list[Decimal] = []
    # R120 is a Peppol rule, not an EN 16931 one: a complete document (totals stated)
    # that names another specification in BT-24, e.g. a CEN example read from XML, is
    # valid with its stated line net amounts. Invoices whose totals the gateway computes
    # itself keep the strict rule.
    r120_severity = "fatal" if (_peppol_or_unspecified(invoice) or invoice.totals is None) \
        else "warning"
    for i, line in enumerate(invoice.lines):
        computed = line_net_amount(line)
        if line.net_amount is not None and line.net_amount != computed:
            findings.append(
                Finding(
                    "PEPPOL-EN16931-R120",
                    f"lines[{i}].net_amount",
                    f"line net amount {line.net_amount} differs from quantity × price ± "
                    f"line allowances/charges = {computed}",
                    severity=r120_severity,
                    term="BT-131",
                )
            )
        line_nets.append(line.net_amount if line.net_amount is not None else computed)

    breakdown = _check_breakdown(invoice, compute_vat_breakdown(invoice, line_nets), findings)
    totals = _check_totals(invoice, line_nets, breakdown, findings)
    findings.extend(_field_rules(invoice, breakdown, totals))

    fatal = [f for f in findings if f.fatal]
    if fatal:
        raise InvoiceRejected(
            fatal, invoice=invoice.number, source=source,
            warnings=[f for f in findings if not f.fatal],
        )
    lines = [
        line if line.net_amount == net else line.model_copy(update={"net_amount": net})
        for line, net in zip(invoice.lines, line_nets, strict=True)
    ]
    return invoice.model_copy(update={"lines": lines, "vat_breakdown": breakdown, "totals": totals})


def _check_breakdown(
    invoice: Invoice, computed: list[VatBreakdown], findings: list[Finding]
) -> list[VatBreakdown]:
    if not invoice.vat_breakdown:
        return computed
    stated = {vat_key(b.category, b.rate): (i, b) for i, b in enumerate(invoice.vat_breakdown)}
    result = []
    for calc in computed:
        key = vat_key(calc.category, calc.rate)
        prefix = _RULE_PREFIX[calc.category]
        if key not in stated:
            findings.append(
                Finding(
                    f"{prefix}-01" if calc.category != VatCategory.STANDARD else "BR-S-01",
                    "vat_breakdown",
                    f"no VAT breakdown for category {calc.category.value} rate {calc.rate} "
                    f"although lines or allowances/charges use it",
                    term="BG-23",
                )
            )
            continue
        i, given = stated.pop(key)
        if abs(given.taxable_amount - calc.taxable_amount) >= VAT_TOLERANCE:
            findings.append(
                Finding(
                    f"{prefix}-08",
                    f"vat_breakdown[{i}].taxable_amount",
                    f"taxable amount {given.taxable_amount} differs from the lines' "
                    f"{calc.taxable_amount}",
                    term="BT-116",
                )
            )
        rate = given.rate or ZERO
        expected_tax = money(given.taxable_amount * rate / 100)
        if abs(given.tax_amount - expected_tax) >= VAT_TOLERANCE or (
            rate == 0 and given.tax_amount != 0
        ):
            findings.append(
                Finding(
                    "BR-CO-17",
                    f"vat_breakdown[{i}].tax_amount",
                    f"tax amount {given.tax_amount} is not taxable amount × rate = "
                    f"{expected_tax}",
                    term="BT-117",
                )
            )
        result.append(given)
    for _key, (i, extra) in stated.items():
        findings.append(
            Finding(
                f"{_RULE_PREFIX[extra.category]}-08",
                f"vat_breakdown[{i}]",
                f"VAT breakdown for category {extra.category.value} rate {extra.rate} "
                "matches no line, allowance or charge",
                term="BG-23",
            )
        )
    return result


def _check_totals(
    invoice: Invoice,
    line_nets: list[Decimal],
    breakdown: list[VatBreakdown],
    findings: list[Finding],
) -> Totals:
    stated = invoice.totals
    line_total = total(line_nets)
    allowances = total(a.amount for a in invoice.allowances) if invoice.allowances else None
    charges = total(c.amount for c in invoice.charges) if invoice.charges else None
    without_vat = line_total - (allowances or ZERO) + (charges or ZERO)
    vat = total(b.tax_amount for b in breakdown)
    with_vat = without_vat + vat
    paid = stated.paid_amount if stated else None
    rounding = stated.rounding_amount if stated else None
    due = with_vat - (paid or ZERO) + (rounding or ZERO)
    computed = Totals(
        line_net_total=line_total,
        allowances_total=allowances,
        charges_total=charges,
        total_without_vat=without_vat,
        vat_total=vat,
        vat_total_accounting_currency=stated.vat_total_accounting_currency if stated else None,
        total_with_vat=with_vat,
        paid_amount=paid,
        rounding_amount=rounding,
        amount_due=due,
    )
    if stated is None:
        return computed
    checks = (
        ("BR-CO-10", "line_net_total", "BT-106", "the sum of the line net amounts"),
        ("BR-CO-11", "allowances_total", "BT-107", "the sum of document level allowances"),
        ("BR-CO-12", "charges_total", "BT-108", "the sum of document level charges"),
        ("BR-CO-13", "total_without_vat", "BT-109", "lines − allowances + charges"),
        ("BR-CO-14", "vat_total", "BT-110", "the sum of the VAT breakdown tax amounts"),
        ("BR-CO-15", "total_with_vat", "BT-112", "total without VAT + VAT total"),
        ("BR-CO-16", "amount_due", "BT-115", "total with VAT − paid amount + rounding"),
    )
    for rule, name, bt, meaning in checks:
        given = getattr(stated, name)
        expected = getattr(computed, name)
        if given is None and name in ("allowances_total", "charges_total", "vat_total"):
            if expected not in (None, ZERO):
                findings.append(
                    Finding(rule, f"totals.{name}", f"is missing; expected {expected} "
                            f"({meaning})", term=bt)
                )
            continue
        if (given or ZERO) != (expected or ZERO):
            findings.append(
                Finding(
                    rule,
                    f"totals.{name}",
                    f"stated {given} but {meaning} is {expected}",
                    term=bt,
                )
            )
    return computed.model_copy(update={"vat_total": stated.vat_total if stated.vat_total
                                       is not None else computed.vat_total})


def _field_rules(invoice: Invoice, breakdown: list[VatBreakdown], totals: Totals) -> list[Finding]:
    out: list[Finding] = []

    def add(rule: str, path: str, message: str, term: str | None = None) -> None:
        out.append(Finding(rule, path, message, term=term))

    for path, period, rule in [("invoice_period", invoice.invoice_period, "BR-29")] + [
        (f"lines[{i}].period", line.period, "BR-30") for i, line in enumerate(invoice.lines)
    ]:
        if period and period.start and period.end and period.end < period.start:
            add(rule, f"{path}.end", f"end {period.end} is before start {period.start}",
                "BT-74" if rule == "BR-29" else "BT-135")
    if invoice.tax_point_date and invoice.tax_point_date_code:
        add("BR-CO-03", "tax_point_date", "give the tax point date or its code, not both", "BT-7")
    seller = invoice.seller
    if not (seller.identifiers or seller.legal_registration_id or seller.vat_id):
        add("BR-CO-26", "seller", "the seller needs an identifier, a legal registration "
            "identifier or a VAT identifier", "BT-29")
    if invoice.vat_accounting_currency and invoice.vat_accounting_currency != invoice.currency \
            and totals.vat_total_accounting_currency is None:
        add("BR-53", "totals.vat_total_accounting_currency",
            "required when a VAT accounting currency is given", "BT-111")

    for i, line in enumerate(invoice.lines):
        p = f"lines[{i}]"
        if line.price.net < 0:
            add("BR-27", f"{p}.price.net", "the item net price must not be negative", "BT-146")
        if line.price.gross is not None and line.price.gross < 0:
            add("BR-28", f"{p}.price.gross", "the item gross price must not be negative",
                "BT-148")
        if line.price.base_quantity is not None and line.price.base_quantity <= 0:
            add("BR-DEC-BASE", f"{p}.price.base_quantity", "must be greater than zero", "BT-149")
        out.extend(_rate_rule(f"{p}.vat", line.vat.category, line.vat.rate, "BT-152"))
        for kind, items, rule in (("allowances", line.allowances, "BR-42"),
                                  ("charges", line.charges, "BR-44")):
            for j, ac in enumerate(items):
                if not (ac.reason or ac.reason_code):
                    add(rule, f"{p}.{kind}[{j}]", "needs a reason or a reason code")
    for kind, items, reason_rule, cat_rule in (
        ("allowances", invoice.allowances, "BR-33", "BR-32"),
        ("charges", invoice.charges, "BR-38", "BR-37"),
    ):
        for j, ac in enumerate(items):
            if not (ac.reason or ac.reason_code):
                add(reason_rule, f"{kind}[{j}]", "needs a reason or a reason code")
            if ac.vat_category is None:
                add(cat_rule, f"{kind}[{j}].vat_category",
                    "a document level allowance or charge needs a VAT category", "BT-95")
            else:
                out.extend(_rate_rule(f"{kind}[{j}]", ac.vat_category, ac.vat_rate, "BT-96"))

    for i, b in enumerate(breakdown):
        rule = _NEEDS_EXEMPTION_REASON.get(b.category)
        if rule and not (b.exemption_reason or b.exemption_reason_code):
            add(rule, f"vat_breakdown[{i}].exemption_reason",
                f"VAT category {b.category.value} needs an exemption reason or code; state "
                "it in vat_breakdown", "BT-120")
        if b.category not in (VatCategory.NOT_SUBJECT,) and not (
            seller.vat_id or seller.tax_registration_id or invoice.tax_representative
        ):
            add(f"{_RULE_PREFIX[b.category]}-02", "seller.vat_id",
                f"VAT category {b.category.value} needs the seller's VAT identifier", "BT-31")
            break

    payment = invoice.payment
    if payment and payment.means_code is None and (
            payment.credit_transfers or payment.card or payment.means_text
            or (payment.direct_debit and payment.direct_debit.debited_account)):
        add("BR-49", "payment.means_code", "payment instructions with an account, card or "
            "means text need the payment means type code", "BT-81")
    if payment and payment.means_code in ("30", "58") and not payment.credit_transfers:
        add("BR-61", "payment.credit_transfers", "a credit transfer needs the payee's account "
            "(IBAN)", "BT-84")
    if totals.amount_due > 0 and not (invoice.due_date or invoice.payment_terms):
        # The CEN schematron (1.3.16) does not enforce BR-CO-25, and on a credit note the
        # amount is owed to the buyer, so the official credit note examples omit both.
        out.append(Finding("BR-CO-25", "due_date", "an amount is due, so give a due date or "
                           "payment terms", severity="warning" if invoice.is_credit_note
                           else "fatal", term="BT-9"))
    return out


def _peppol_or_unspecified(invoice: Invoice) -> bool:
    spec = invoice.specification_id
    return spec is None or "urn:fdc:peppol.eu:2017:poacc:billing:3.0" in spec


def _rate_rule(
    path: str, category: VatCategory, rate: Decimal | None, bt: str
) -> list[Finding]:
    prefix = _RULE_PREFIX[category]
    if category == VatCategory.NOT_SUBJECT:
        if rate is not None:
            return [Finding("BR-O-05", f"{path}.rate", "category O (not subject to VAT) has no "
                            "VAT rate", term=bt)]
        return []
    if rate is None:
        return [Finding(f"{prefix}-05", f"{path}.rate",
                        f"category {category.value} needs a VAT rate", term=bt)]
    if category == VatCategory.STANDARD and rate <= 0:
        return [Finding("BR-S-05", f"{path}.rate", "standard rated VAT must be greater than 0",
                        term=bt)]
    if category in (VatCategory.ZERO_RATED, VatCategory.EXEMPT, VatCategory.REVERSE_CHARGE,
                    VatCategory.INTRA_COMMUNITY, VatCategory.EXPORT) and rate != 0:
        return [Finding(f"{prefix}-05", f"{path}.rate",
                        f"category {category.value} must have VAT rate 0", term=bt)]
    return []
