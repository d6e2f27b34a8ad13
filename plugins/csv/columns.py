"""The column specification of the gateway's CSV: one place, read by the writer, the
reader and the documentation test.

A column is either invoice-level (the same value repeated on every row of an invoice)
or row-level (one value per invoice line, document-level charge or allowance). Each
column maps to one field of the invoice model by a path of attribute names, where
``0`` stands for "the first item of a list" (the CSV carries one seller identifier,
one credit transfer, one note, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "date", "amount", "decimal", "code"]
Level = Literal["invoice", "row"]
Step = str | int


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    level: Level
    kind: Kind
    term: str  # EN 16931 business term, or "derived" for a convenience column
    help: str
    path: tuple[Step, ...] = ()  # into Invoice (invoice level) or InvoiceLine (row level)
    #: For charge/allowance rows: the path into AllowanceCharge; None = must stay empty.
    ac_path: tuple[Step, ...] | None = None

    @property
    def derived(self) -> bool:
        return self.term == "derived"


def _p(dotted: str) -> tuple[Step, ...]:
    return tuple(int(s) if s.isdigit() else s for s in dotted.split("."))


def _inv(name: str, kind: Kind, term: str, dotted: str, help: str) -> Column:
    return Column(name, "invoice", kind, term, help, _p(dotted))


def _row(name: str, kind: Kind, term: str, dotted: str, help: str,
         ac: str | None = None) -> Column:
    return Column(name, "row", kind, term, help, _p(dotted) if dotted else (),
                  _p(ac) if ac else None)


def _party(role: str, t: dict[str, str]) -> list[Column]:
    r = role
    return [
        _inv(f"{r}_name", "text", t["name"], f"{r}.name", f"{r.title()} name"),
        _inv(f"{r}_trading_name", "text", t["trading"], f"{r}.trading_name", "Trading name"),
        _inv(f"{r}_id", "text", t["id"], f"{r}.identifiers.0.value",
             "Party identifier (the first one)"),
        _inv(f"{r}_id_scheme", "code", t["id"] + "-1", f"{r}.identifiers.0.scheme",
             "Scheme of the party identifier"),
        _inv(f"{r}_registration_id", "text", t["reg"], f"{r}.legal_registration_id.value",
             "Legal registration identifier (LV: unified registration number)"),
        _inv(f"{r}_registration_id_scheme", "code", t["reg"] + "-1",
             f"{r}.legal_registration_id.scheme", "Its scheme, e.g. 0218"),
        _inv(f"{r}_vat_id", "text", t["vat"], f"{r}.vat_id", "VAT identifier, e.g. LV40003000001"),
        _inv(f"{r}_electronic_address", "text", t["ea"], f"{r}.electronic_address.value",
             "Electronic address"),
        _inv(f"{r}_electronic_address_scheme", "code", t["ea"] + "-1",
             f"{r}.electronic_address.scheme", "Electronic address scheme (EAS), e.g. 9939"),
        _inv(f"{r}_address_line1", "text", t["line1"], f"{r}.address.line1", "Address line 1"),
        _inv(f"{r}_address_line2", "text", t["line2"], f"{r}.address.line2", "Address line 2"),
        _inv(f"{r}_city", "text", t["city"], f"{r}.address.city", "City"),
        _inv(f"{r}_postal_code", "text", t["post"], f"{r}.address.postal_code", "Post code"),
        _inv(f"{r}_country", "code", t["country"], f"{r}.address.country",
             "Country code, ISO 3166-1 alpha-2 (LV)"),
        _inv(f"{r}_contact_name", "text", t["cname"], f"{r}.contact.name", "Contact point"),
        _inv(f"{r}_telephone", "text", t["tel"], f"{r}.contact.telephone", "Contact telephone"),
        _inv(f"{r}_email", "text", t["mail"], f"{r}.contact.email", "Contact e-mail"),
    ]


_SELLER = dict(name="BT-27", trading="BT-28", id="BT-29", reg="BT-30", vat="BT-31",
               ea="BT-34", line1="BT-35", line2="BT-36", city="BT-37", post="BT-38",
               country="BT-40", cname="BT-41", tel="BT-42", mail="BT-43")
_BUYER = dict(name="BT-44", trading="BT-45", id="BT-46", reg="BT-47", vat="BT-48",
              ea="BT-49", line1="BT-50", line2="BT-51", city="BT-52", post="BT-53",
              country="BT-55", cname="BT-56", tel="BT-57", mail="BT-58")

INVOICE_COLUMNS: tuple[Column, ...] = (
    _inv("invoice_number", "text", "BT-1", "number",
         "Invoice number; consecutive rows with the same number form one invoice"),
    _inv("issue_date", "date", "BT-2", "issue_date", "Issue date, YYYY-MM-DD"),
    _inv("type_code", "code", "BT-3", "type_code",
         "380 invoice, 381 credit note, 384 corrected invoice, ... (default 380)"),
    _inv("currency", "code", "BT-5", "currency", "Currency, ISO 4217 (EUR)"),
    _inv("business_process", "text", "BT-23", "business_process", "Business process type"),
    _inv("specification_id", "text", "BT-24", "specification_id",
         "Specification identifier, e.g. urn:cen.eu:en16931:2017"),
    _inv("due_date", "date", "BT-9", "due_date", "Payment due date, YYYY-MM-DD"),
    _inv("tax_point_date", "date", "BT-7", "tax_point_date", "VAT point date, YYYY-MM-DD"),
    _inv("buyer_reference", "text", "BT-10", "buyer_reference", "Buyer reference"),
    _inv("contract_reference", "text", "BT-12", "contract_reference", "Contract number"),
    _inv("purchase_order_reference", "text", "BT-13", "purchase_order_reference",
         "Purchase order reference"),
    _inv("project_reference", "text", "BT-11", "project_reference", "Project reference"),
    _inv("buyer_accounting_reference", "text", "BT-19", "buyer_accounting_reference",
         "Buyer accounting reference"),
    _inv("invoiced_object", "text", "BT-18", "invoiced_object.value",
         "Invoiced object, e.g. the metering point"),
    _inv("invoiced_object_scheme", "code", "BT-18-1", "invoiced_object.scheme",
         "Scheme of the invoiced object, e.g. AET"),
    _inv("period_start", "date", "BT-73", "invoice_period.start", "Invoicing period start"),
    _inv("period_end", "date", "BT-74", "invoice_period.end", "Invoicing period end"),
    _inv("preceding_invoice", "text", "BT-25", "preceding_invoices.0.number",
         "Preceding invoice number (credit notes, corrections)"),
    _inv("preceding_invoice_date", "date", "BT-26", "preceding_invoices.0.issue_date",
         "Preceding invoice issue date"),
    _inv("note", "text", "BT-22", "notes.0.text", "Invoice note (the first one)"),
    _inv("note_subject_code", "code", "BT-21", "notes.0.subject_code",
         "Subject code of the note (UNTDID 4451)"),
    _inv("payment_terms", "text", "BT-20", "payment_terms", "Payment terms"),
    *_party("seller", _SELLER),
    *_party("buyer", _BUYER),
    _inv("payment_means_code", "code", "BT-81", "payment.means_code",
         "Payment means, UNTDID 4461: 58 SEPA credit transfer, 30 credit transfer"),
    _inv("payment_means_text", "text", "BT-82", "payment.means_text", "Payment means text"),
    _inv("payment_reference", "text", "BT-83", "payment.remittance_information",
         "Payment reference the payer quotes (invoice and contract number)"),
    _inv("iban", "text", "BT-84", "payment.credit_transfers.0.account_id",
         "Account to pay to (IBAN)"),
    _inv("account_name", "text", "BT-85", "payment.credit_transfers.0.account_name",
         "Account name"),
    _inv("bic", "text", "BT-86", "payment.credit_transfers.0.bic", "BIC of the bank"),
    _inv("line_net_total", "amount", "BT-106", "totals.line_net_total",
         "Sum of line net amounts"),
    _inv("allowances_total", "amount", "BT-107", "totals.allowances_total",
         "Sum of document level allowances"),
    _inv("charges_total", "amount", "BT-108", "totals.charges_total",
         "Sum of document level charges"),
    _inv("total_without_vat", "amount", "BT-109", "totals.total_without_vat",
         "Total without VAT"),
    _inv("vat_total", "amount", "BT-110", "totals.vat_total", "Total VAT"),
    _inv("total_with_vat", "amount", "BT-112", "totals.total_with_vat", "Total with VAT"),
    _inv("paid_amount", "amount", "BT-113", "totals.paid_amount", "Already paid"),
    _inv("rounding_amount", "amount", "BT-114", "totals.rounding_amount", "Rounding"),
    _inv("amount_due", "amount", "BT-115", "totals.amount_due", "Amount due for payment"),
)

ROW_COLUMNS: tuple[Column, ...] = (
    _row("row_type", "code", "-", "",
         "line (default), charge (document level, e.g. the paper invoice fee) or allowance"),
    _row("line_id", "text", "BT-126", "id", "Line number within the invoice"),
    _row("item_name", "text", "BT-153", "item.name",
         "Item name; for a charge or allowance row: its reason (BT-104/BT-97)", ac="reason"),
    _row("item_description", "text", "BT-154", "item.description", "Item description"),
    _row("item_sellers_id", "text", "BT-155", "item.sellers_id", "Seller's item code"),
    _row("item_buyers_id", "text", "BT-156", "item.buyers_id", "Buyer's item code"),
    _row("line_note", "text", "BT-127", "note", "Line note"),
    _row("quantity", "decimal", "BT-129", "quantity", "Invoiced quantity"),
    _row("unit", "code", "BT-130", "unit", "Unit, UN/ECE Rec 20: KWH, MON, C62, H87"),
    _row("price", "decimal", "BT-146", "price.net", "Net price per (base) quantity"),
    _row("price_base_quantity", "decimal", "BT-149", "price.base_quantity",
         "Quantity the price is for (default 1)"),
    _row("line_period_start", "date", "BT-134", "period.start", "Line period start"),
    _row("line_period_end", "date", "BT-135", "period.end", "Line period end"),
    _row("line_net_amount", "amount", "BT-131", "net_amount",
         "Line net amount (quantity × price); charge row: the charge; allowance row: the "
         "allowance as a negative number, so that the column sums to the total without VAT",
         ac="amount"),
    _row("reason_code", "code", "BT-105/BT-98", "",
         "Charge row: UNTDID 7161 code; allowance row: UNTDID 5189 code", ac="reason_code"),
    _row("vat_category", "code", "BT-151", "vat.category",
         "VAT category: S standard, Z zero, E exempt, AE reverse charge, O not subject",
         ac="vat_category"),
    _row("vat_rate", "decimal", "BT-152", "vat.rate", "VAT rate in percent, e.g. 21",
         ac="vat_rate"),
    _row("vat_exemption_reason", "text", "BT-120", "",
         "Exemption reason of this row's VAT category (same on all its rows)"),
    _row("vat_exemption_reason_code", "code", "BT-121", "",
         "Exemption reason code (VATEX) of this row's VAT category"),
    _row("line_vat_amount", "amount", "derived", "",
         "Line net amount × VAT rate, rounded; written for spreadsheets, not read back"),
    _row("line_amount_with_vat", "amount", "derived", "",
         "Line net amount + line VAT amount; written for spreadsheets, not read back"),
)

COLUMNS: tuple[Column, ...] = INVOICE_COLUMNS + ROW_COLUMNS
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
HEADER: tuple[str, ...] = tuple(c.name for c in COLUMNS)
ROW_TYPES = ("line", "charge", "allowance")
