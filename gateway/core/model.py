"""The invoice model: the EN 16931 semantic model as pydantic v2 classes.

Field names are plain English; every field's description starts with its EN 16931
business term (``BT-…``) or group (``BG-…``), and ``json_schema_extra`` carries the
term and, where the standard has one, the rule that makes the field mandatory. That
lets :mod:`gateway.core.validation` turn a pydantic error into "BR-07 buyer.name".

Money, quantities and prices are :class:`~decimal.Decimal`, never float: amounts have
at most two decimals (BR-DEC-*), quantities and prices at most ten.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from gateway.core import codelists

# Besides C0 controls: a byte order mark (files glued together), and the bidi controls
# that make text display in another order than it is stored ("Trojan Source"). In an
# invoice number they would also make two numbers look alike and share a file name.
# C1 controls (U+0080-U+009F) too: a terminal may read U+009B as the start of a command.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u202a-\u202e\u2066-\u2069]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, escape, byte order "
                         "mark, bidi override, ...)")
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
    AfterValidator(_no_control_characters),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=512),
    AfterValidator(_no_control_characters),
]


def _one_line(value: str) -> str:
    # A line break in a document number splits the line it is printed or logged on, and
    # forges what follows (tab stays: some numbering schemes are pasted from tables).
    if "\n" in value or "\r" in value:
        raise ValueError("must be one line: no line feed or carriage return")
    return value


#: an identifier such as the invoice number: short text on one line
DocumentNumber = Annotated[ShortText, AfterValidator(_one_line)]
#: Two decimals at most (BR-DEC-*), and no more than 15 digits before the point.
Amount = Annotated[Decimal, Field(max_digits=17, decimal_places=2, allow_inf_nan=False)]
#: Quantities, prices and rates: more precision, still bounded.
Quantity = Annotated[Decimal, Field(max_digits=25, decimal_places=10, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(max_digits=7, decimal_places=4, ge=0, allow_inf_nan=False)]
#: An allowance or charge percentage: EN 16931 does not forbid a negative one (BT-94).
SignedPercent = Annotated[Decimal, Field(max_digits=7, decimal_places=4, allow_inf_nan=False)]


def _listed(codes: frozenset[str], what: str, *, upper: bool = False) -> AfterValidator:
    """Membership in an official code list (:mod:`gateway.core.codelists`, generated from
    the CEN schematron), with the rule's own wording of what was expected."""

    def check(value: str) -> str:
        if (value.upper() if upper else value) not in codes:
            raise ValueError(f"{value!r} is not in the {what} code list")
        return value

    return AfterValidator(check)


Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=35)]
CountryCode = Annotated[Code, _listed(codelists.COUNTRY_CODES, "ISO 3166-1 alpha-2 (BR-CL-14)")]
CurrencyCode = Annotated[Code, _listed(codelists.CURRENCY_CODES, "ISO 4217 (BR-CL-04)")]
#: UN/ECE Recommendation 20 (with Rec 21) unit code, e.g. KWH, C62, MON, H87.
UnitCode = Annotated[Code, _listed(codelists.UNIT_CODES, "UN/ECE Rec 20/21 (BR-CL-23)")]
DocumentTypeCode = Annotated[Code, _listed(
    codelists.INVOICE_TYPE_CODES | codelists.CREDIT_NOTE_TYPE_CODES, "UNTDID 1001 (BR-CL-01)")]
PaymentMeansCode = Annotated[Code, _listed(codelists.PAYMENT_MEANS_CODES,
                                           "UNTDID 4461 (BR-CL-16)")]
VatexCode = Annotated[Code, _listed(codelists.VATEX_CODES, "VATEX (BR-CL-22)", upper=True)]
EasScheme = Annotated[Code, _listed(codelists.EAS_SCHEMES, "CEF EAS (BR-CL-25)")]
ReasonCode = Annotated[Code, _listed(
    codelists.ALLOWANCE_REASON_CODES | codelists.CHARGE_REASON_CODES,
    "UNTDID 5189 / 7161 (BR-CL-19/BR-CL-20)")]


def term(
    bt: str, description: str, *, rule: str | None = None, default: Any = ..., **kw: Any
) -> Any:
    """A field documented with its EN 16931 term (and the rule that requires it)."""
    extra: dict[str, str] = {"bt": bt}
    if rule:
        extra["rule"] = rule
    return Field(default, description=f"{bt}: {description}", json_schema_extra=extra, **kw)


class _Model(BaseModel):
    # extra="forbid": a misspelt field in a billing system's JSON must be an error,
    # not a silently missing business term.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InvoiceTypeCode(StrEnum):
    """Names for the BT-3 codes used most; any code of the official UNTDID 1001 subset
    (:data:`gateway.core.codelists.INVOICE_TYPE_CODES` and ``CREDIT_NOTE_TYPE_CODES``)
    is accepted."""

    COMMERCIAL_INVOICE = "380"
    CREDIT_NOTE = "381"
    CORRECTED_INVOICE = "384"
    SELF_BILLED_INVOICE = "389"
    PREPAYMENT_INVOICE = "386"
    DEBIT_NOTE = "383"
    PARTIAL_INVOICE = "326"


CREDIT_NOTE_CODES = frozenset({"381", "261", "262", "296", "308", "396", "420", "458", "532"})


class VatCategory(StrEnum):
    """BT-95/BT-102/BT-118/BT-151, UNTDID 5305 as restricted by EN 16931."""

    STANDARD = "S"
    ZERO_RATED = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    INTRA_COMMUNITY = "K"
    EXPORT = "G"
    NOT_SUBJECT = "O"
    CANARY_ISLANDS = "L"
    CEUTA_MELILLA = "M"
    SPLIT_PAYMENT = "B"  # Italian split payment (scissione dei pagamenti)


class Identifier(_Model):
    """An identifier with an optional scheme (ISO 6523 ICD, EAS, ...)."""

    value: ShortText = Field(description="The identifier itself")
    scheme: Code | None = Field(None, description="Scheme identifier, e.g. 0218 or 9939")


class ElectronicAddress(_Model):
    """BT-34 / BT-49: where the party receives e-invoices, with its EAS scheme."""

    value: ShortText = Field(description="The address, e.g. LV40003000000")
    scheme: EasScheme = term(
        "BT-34-1/BT-49-1",
        "Electronic address scheme (EAS), e.g. 9939 LV VAT, 0218 LV register, EM e-mail",
        rule="BR-62/BR-63",
    )


class Address(_Model):
    """BG-5 / BG-8 / BG-12 / BG-15: a postal address."""

    line1: ShortText | None = term("BT-35", "Address line 1", default=None)
    line2: ShortText | None = term("BT-36", "Address line 2", default=None)
    line3: ShortText | None = term("BT-162", "Address line 3", default=None)
    city: ShortText | None = term("BT-37", "City", default=None)
    postal_code: ShortText | None = term("BT-38", "Post code", default=None)
    subdivision: ShortText | None = term("BT-39", "Country subdivision", default=None)
    country: CountryCode = term("BT-40", "Country code (ISO 3166-1 alpha-2)", rule="BR-09")


class Contact(_Model):
    """BG-6 / BG-9: a contact point."""

    name: ShortText | None = term("BT-41", "Contact point", default=None)
    telephone: ShortText | None = term("BT-42", "Contact telephone number", default=None)
    email: ShortText | None = term("BT-43", "Contact e-mail address", default=None)


class Party(_Model):
    """BG-4 (seller) and BG-7 (buyer)."""

    name: ShortText = term("BT-27/BT-44", "Registered name", rule="BR-06/BR-07")
    trading_name: ShortText | None = term("BT-28/BT-45", "Trading name", default=None)
    identifiers: list[Identifier] = term(
        "BT-29/BT-46", "Party identifiers (seller: several; buyer: one)", default_factory=list
    )
    legal_registration_id: Identifier | None = term(
        "BT-30/BT-47", "Legal registration identifier (LV: unified registration number)",
        default=None,
    )
    vat_id: ShortText | None = term("BT-31/BT-48", "VAT identifier with country prefix",
                                    default=None)
    tax_registration_id: ShortText | None = term(
        "BT-32", "Seller tax registration identifier (local, non-VAT)", default=None
    )
    additional_legal_information: Text | None = term(
        "BT-33", "Seller additional legal information", default=None
    )
    electronic_address: ElectronicAddress | None = term(
        "BT-34/BT-49", "Electronic address", default=None
    )
    address: Address = term("BG-5/BG-8", "Postal address", rule="BR-08/BR-10")
    contact: Contact | None = term("BG-6/BG-9", "Contact", default=None)


class Payee(_Model):
    """BG-10: who receives the payment, when not the seller."""

    name: ShortText = term("BT-59", "Payee name", rule="BR-17")
    identifier: Identifier | None = term("BT-60", "Payee identifier", default=None)
    legal_registration_id: Identifier | None = term(
        "BT-61", "Payee legal registration identifier", default=None
    )


class TaxRepresentative(_Model):
    """BG-11: the seller's tax representative."""

    name: ShortText = term("BT-62", "Tax representative name", rule="BR-18")
    vat_id: ShortText = term("BT-63", "Tax representative VAT identifier", rule="BR-56")
    address: Address = term("BG-12", "Tax representative postal address", rule="BR-19")


class Delivery(_Model):
    """BG-13: delivery information."""

    party_name: ShortText | None = term("BT-70", "Deliver to party name", default=None)
    location_id: Identifier | None = term("BT-71", "Deliver to location identifier",
                                          default=None)
    date: dt.date | None = term("BT-72", "Actual delivery date", default=None)
    address: Address | None = term("BG-15", "Deliver to address", default=None)


class Period(_Model):
    """BG-14 / BG-26: a period with start and end date (inclusive)."""

    start: dt.date | None = term("BT-73/BT-134", "Start date", default=None)
    end: dt.date | None = term("BT-74/BT-135", "End date", default=None)


class Note(_Model):
    """BG-1: invoice note."""

    text: Text = term("BT-22", "Invoice note")
    subject_code: Code | None = term("BT-21", "Invoice note subject code (UNTDID 4451)",
                                     default=None)


class PrecedingInvoice(_Model):
    """BG-3: reference to an earlier invoice (credit notes, corrections)."""

    number: DocumentNumber = term("BT-25", "Preceding invoice reference", rule="BR-55")
    issue_date: dt.date | None = term("BT-26", "Preceding invoice issue date", default=None)


class AllowanceCharge(_Model):
    """BG-20/BG-21 (document level) and BG-27/BG-28 (line level).

    Document-level allowances and charges need a VAT category; line-level ones must
    not have one (their VAT follows the line).
    """

    amount: Amount = term("BT-92/BT-99/BT-136/BT-141", "Amount (without VAT)",
                          rule="BR-31/BR-36/BR-41/BR-43")
    base_amount: Amount | None = term("BT-93/BT-100/BT-137/BT-142", "Base amount",
                                      default=None)
    percentage: SignedPercent | None = term("BT-94/BT-101/BT-138/BT-143", "Percentage",
                                      default=None)
    vat_category: VatCategory | None = term(
        "BT-95/BT-102", "VAT category code (document level only)", default=None
    )
    vat_rate: Percent | None = term("BT-96/BT-103", "VAT rate (document level only)",
                                    default=None)
    reason: ShortText | None = term("BT-97/BT-104/BT-139/BT-144", "Reason", default=None)
    reason_code: ReasonCode | None = term(
        "BT-98/BT-105/BT-140/BT-145",
        "Reason code (allowances UNTDID 5189, charges UNTDID 7161)",
        default=None,
    )


class Price(_Model):
    """BG-29: price details."""

    net: Quantity = term("BT-146", "Item net price", rule="BR-26")
    discount: Quantity | None = term("BT-147", "Item price discount", default=None)
    gross: Quantity | None = term("BT-148", "Item gross price", default=None)
    base_quantity: Quantity | None = term("BT-149", "Item price base quantity", default=None)
    base_quantity_unit: UnitCode | None = term("BT-150", "Base quantity unit of measure",
                                               default=None)


class ItemAttribute(_Model):
    """BG-32: item attribute."""

    name: ShortText = term("BT-160", "Item attribute name", rule="BR-54")
    value: ShortText = term("BT-161", "Item attribute value", rule="BR-54")


class Item(_Model):
    """BG-31: item information."""

    name: ShortText = term("BT-153", "Item name", rule="BR-25")
    description: Text | None = term("BT-154", "Item description", default=None)
    sellers_id: ShortText | None = term("BT-155", "Item Seller's identifier", default=None)
    buyers_id: ShortText | None = term("BT-156", "Item Buyer's identifier", default=None)
    standard_id: Identifier | None = term("BT-157", "Item standard identifier (with scheme)",
                                          default=None)
    classifications: list[Identifier] = term(
        "BT-158", "Item classification identifiers (with list id)", default_factory=list
    )
    origin_country: CountryCode | None = term("BT-159", "Item country of origin", default=None)
    attributes: list[ItemAttribute] = term("BG-32", "Item attributes", default_factory=list)


class LineVat(_Model):
    """BG-30: line VAT information."""

    category: VatCategory = term("BT-151", "Invoiced item VAT category code", rule="BR-CO-4")
    rate: Percent | None = term("BT-152", "Invoiced item VAT rate (absent for O)", default=None)


class InvoiceLine(_Model):
    """BG-25: an invoice line."""

    id: ShortText = term("BT-126", "Invoice line identifier", rule="BR-21")
    note: Text | None = term("BT-127", "Invoice line note", default=None)
    object_id: Identifier | None = term("BT-128", "Invoice line object identifier",
                                        default=None)
    quantity: Quantity = term("BT-129", "Invoiced quantity", rule="BR-22")
    unit: UnitCode = term("BT-130", "Unit of measure (UN/ECE Rec 20)", rule="BR-23")
    net_amount: Amount | None = term(
        "BT-131", "Line net amount; computed from quantity and price when absent"
        , rule="BR-24", default=None
    )
    order_line_reference: ShortText | None = term("BT-132", "Referenced purchase order line",
                                                  default=None)
    accounting_reference: ShortText | None = term("BT-133", "Buyer accounting reference",
                                                  default=None)
    period: Period | None = term("BG-26", "Invoice line period", default=None)
    allowances: list[AllowanceCharge] = term("BG-27", "Line allowances", default_factory=list)
    charges: list[AllowanceCharge] = term("BG-28", "Line charges", default_factory=list)
    price: Price = term("BG-29", "Price details", rule="BR-26")
    vat: LineVat = term("BG-30", "Line VAT information", rule="BR-CO-4")
    item: Item = term("BG-31", "Item information", rule="BR-25")


class CreditTransfer(_Model):
    """BG-17: credit transfer account."""

    account_id: ShortText = term("BT-84", "Payment account identifier (IBAN)", rule="BR-50")
    account_name: ShortText | None = term("BT-85", "Payment account name", default=None)
    bic: ShortText | None = term("BT-86", "Payment service provider identifier (BIC)",
                                 default=None)


class PaymentCard(_Model):
    """BG-18: payment card information."""

    account_number: ShortText = term("BT-87", "Payment card primary account number (last 4-6)",
                                     rule="BR-51")
    holder_name: ShortText | None = term("BT-88", "Payment card holder name", default=None)


class DirectDebit(_Model):
    """BG-19: direct debit."""

    mandate_reference: ShortText | None = term("BT-89", "Mandate reference identifier",
                                               default=None)
    creditor_id: ShortText | None = term("BT-90", "Bank assigned creditor identifier",
                                         default=None)
    debited_account: ShortText | None = term("BT-91", "Debited account identifier",
                                             default=None)


class PaymentInstructions(_Model):
    """BG-16: payment instructions."""

    # Optional in the model: CII carries the payment reference (BT-83) outside the payment
    # means, and a document with a reference but no means is valid (BR-49 applies to the
    # means the document has; see gateway.core.validation).
    means_code: PaymentMeansCode | None = term(
        "BT-81", "Payment means type code (UNTDID 4461; 30, 58 transfer)", rule="BR-49",
        default=None)
    means_text: ShortText | None = term("BT-82", "Payment means text", default=None)
    remittance_information: ShortText | None = term(
        "BT-83", "Remittance information: the payment reference the payer must quote",
        default=None,
    )
    credit_transfers: list[CreditTransfer] = term("BG-17", "Credit transfers",
                                                  default_factory=list)
    card: PaymentCard | None = term("BG-18", "Payment card information", default=None)
    direct_debit: DirectDebit | None = term("BG-19", "Direct debit", default=None)


class Totals(_Model):
    """BG-22: document totals. Computed from the lines when not given; checked when given."""

    line_net_total: Amount = term("BT-106", "Sum of invoice line net amount", rule="BR-12")
    allowances_total: Amount | None = term("BT-107", "Sum of allowances on document level",
                                           default=None)
    charges_total: Amount | None = term("BT-108", "Sum of charges on document level",
                                        default=None)
    total_without_vat: Amount = term("BT-109", "Invoice total amount without VAT",
                                     rule="BR-13")
    vat_total: Amount | None = term("BT-110", "Invoice total VAT amount", default=None)
    vat_total_accounting_currency: Amount | None = term(
        "BT-111", "Invoice total VAT amount in accounting currency", default=None
    )
    total_with_vat: Amount = term("BT-112", "Invoice total amount with VAT", rule="BR-14")
    paid_amount: Amount | None = term("BT-113", "Paid amount", default=None)
    rounding_amount: Amount | None = term("BT-114", "Rounding amount", default=None)
    amount_due: Amount = term("BT-115", "Amount due for payment", rule="BR-15")


class VatBreakdown(_Model):
    """BG-23: one VAT category and rate; computed from the lines when not given."""

    taxable_amount: Amount = term("BT-116", "VAT category taxable amount", rule="BR-45")
    tax_amount: Amount = term("BT-117", "VAT category tax amount", rule="BR-46")
    category: VatCategory = term("BT-118", "VAT category code", rule="BR-47")
    rate: Percent | None = term("BT-119", "VAT category rate (absent for O)", default=None)
    exemption_reason: ShortText | None = term("BT-120", "VAT exemption reason text",
                                              default=None)
    exemption_reason_code: VatexCode | None = term("BT-121", "VAT exemption reason code (VATEX)",
                                              default=None)


class Attachment(_Model):
    """BT-125: an attached document, base64 in JSON."""

    content: bytes = Field(description="BT-125: the file (base64 in JSON)")
    mime_code: ShortText = Field(description="BT-125-1: MIME type, e.g. application/pdf")
    filename: ShortText = Field(description="BT-125-2: file name")


class SupportingDocument(_Model):
    """BG-24: additional supporting document."""

    id: ShortText = term("BT-122", "Supporting document reference", rule="BR-52")
    description: ShortText | None = term("BT-123", "Supporting document description",
                                         default=None)
    uri: ShortText | None = term("BT-124", "External document location", default=None)
    attachment: Attachment | None = term("BT-125", "Attached document", default=None)


class Invoice(_Model):
    """An invoice or credit note following the EN 16931 semantic model."""

    number: DocumentNumber = term("BT-1", "Invoice number", rule="BR-02")
    issue_date: dt.date = term("BT-2", "Invoice issue date", rule="BR-03")
    type_code: DocumentTypeCode = term("BT-3", "Invoice type code (UNTDID 1001)", rule="BR-04",
                                       default=InvoiceTypeCode.COMMERCIAL_INVOICE.value)
    currency: CurrencyCode = term("BT-5", "Invoice currency code (ISO 4217)", rule="BR-05")
    vat_accounting_currency: CurrencyCode | None = term("BT-6", "VAT accounting currency code",
                                                        default=None)
    tax_point_date: dt.date | None = term("BT-7", "Value added tax point date", default=None)
    tax_point_date_code: Code | None = term("BT-8", "VAT point date code (UNTDID 2005)",
                                            default=None)
    due_date: dt.date | None = term("BT-9", "Payment due date", default=None)
    buyer_reference: ShortText | None = term("BT-10", "Buyer reference (Peppol: this or BT-13)",
                                             default=None)
    project_reference: ShortText | None = term("BT-11", "Project reference", default=None)
    contract_reference: ShortText | None = term("BT-12", "Contract reference", default=None)
    purchase_order_reference: ShortText | None = term("BT-13", "Purchase order reference",
                                                      default=None)
    sales_order_reference: ShortText | None = term("BT-14", "Sales order reference",
                                                   default=None)
    receiving_advice_reference: ShortText | None = term("BT-15", "Receiving advice reference",
                                                        default=None)
    despatch_advice_reference: ShortText | None = term("BT-16", "Despatch advice reference",
                                                       default=None)
    tender_reference: ShortText | None = term("BT-17", "Tender or lot reference", default=None)
    invoiced_object: Identifier | None = term(
        "BT-18", "Invoiced object identifier (e.g. metering point)", default=None
    )
    buyer_accounting_reference: ShortText | None = term("BT-19", "Buyer accounting reference",
                                                        default=None)
    payment_terms: Text | None = term("BT-20", "Payment terms", default=None)
    notes: list[Note] = term("BG-1", "Invoice notes", default_factory=list)
    business_process: ShortText | None = term("BT-23", "Business process type", default=None)
    specification_id: ShortText | None = term(
        "BT-24", "Specification identifier; set by the XML syntax when absent", default=None
    )
    preceding_invoices: list[PrecedingInvoice] = term("BG-3", "Preceding invoice references",
                                                      default_factory=list)
    seller: Party = term("BG-4", "Seller", rule="BR-06")
    buyer: Party = term("BG-7", "Buyer", rule="BR-07")
    payee: Payee | None = term("BG-10", "Payee", default=None)
    tax_representative: TaxRepresentative | None = term("BG-11", "Seller tax representative",
                                                        default=None)
    delivery: Delivery | None = term("BG-13", "Delivery information", default=None)
    invoice_period: Period | None = term("BG-14", "Invoicing period", default=None)
    payment: PaymentInstructions | None = term("BG-16", "Payment instructions", default=None)
    allowances: list[AllowanceCharge] = term("BG-20", "Document level allowances",
                                             default_factory=list)
    charges: list[AllowanceCharge] = term("BG-21", "Document level charges",
                                          default_factory=list)
    totals: Totals | None = term("BG-22", "Document totals; computed when absent", default=None)
    vat_breakdown: list[VatBreakdown] = term(
        "BG-23", "VAT breakdown; computed when absent", default_factory=list
    )
    supporting_documents: list[SupportingDocument] = term(
        "BG-24", "Additional supporting documents", default_factory=list
    )
    lines: list[InvoiceLine] = term("BG-25", "Invoice lines", rule="BR-16", min_length=1)
    extensions: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Content of an input document that EN 16931 has no term for, kept by XPath "
            "so that it is reported rather than dropped"
        ),
    )

    @property
    def is_credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_CODES

    @property
    def seller_key(self) -> str:
        """Who issued the number: VAT id, else legal registration id, else name.

        Invoice numbers are unique per seller (BT-1), so (seller_key, number) is the
        gateway's idempotency key for a push.
        """
        s = self.seller
        if s.vat_id:
            return s.vat_id
        if s.legal_registration_id:
            return s.legal_registration_id.value
        return s.name

    @property
    def payment_reference(self) -> str | None:
        return self.payment.remittance_information if self.payment else None

    @property
    def iban(self) -> str | None:
        if self.payment and self.payment.credit_transfers:
            return self.payment.credit_transfers[0].account_id
        return None

    def require_totals(self) -> Totals:
        """The totals of a completed invoice (see :func:`gateway.core.complete`)."""
        if self.totals is None:
            raise ValueError(f"invoice {self.number} has not been completed")
        return self.totals


DocumentKind = Literal["invoice", "credit-note"]
