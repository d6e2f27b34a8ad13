"""Invoice model → UBL 2.1 Invoice / CreditNote following Peppol BIS Billing 3.0.

Built directly with lxml in the XSD's element order (the order is part of validity), so
the output is deterministic: the same invoice always gives the same bytes. Only what the
invoice carries is written; where Peppol needs more (an endpoint id, a buyer
reference), the document is left for validation to report the Peppol rule rather than
filled with invented values.
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from gateway import Finding, InvoiceRejected
from gateway.core import (
    Address,
    AllowanceCharge,
    Contact,
    CreditTransfer,
    Identifier,
    Invoice,
    InvoiceLine,
    Party,
    Period,
)

from .namespaces import (
    CAC,
    CBC,
    PEPPOL_BILLING,
    PEPPOL_CUSTOMIZATION,
    PEPPOL_PROFILE,
    UBL_CREDIT_NOTE,
    UBL_INVOICE,
)
from .xmlutil import amount, number, serialize

_Element = etree._Element
_SUB = etree.SubElement

#: DocumentTypeCode (UNTDID 1001) that marks an AdditionalDocumentReference as BT-18
#: (invoiced object) or, in a credit note, as BT-11 (project reference).
INVOICED_OBJECT_CODE = "130"
PROJECT_CODE = "50"


_CBC: dict[str, str] = {}
_CAC: dict[str, str] = {}


def cbc(parent: _Element, name: str, text: str | None, attrs: dict[str, str] | None = None
        ) -> _Element | None:
    if text is None:
        return None
    # Called ~60 times per invoice plus ~20 per line: the Clark-notation tag is cached.
    tag = _CBC.get(name)
    if tag is None:
        tag = _CBC[name] = f"{{{CBC}}}{name}"
    el = _SUB(parent, tag, attrs) if attrs else _SUB(parent, tag)
    el.text = text
    return el


def cac(parent: _Element, name: str) -> _Element:
    tag = _CAC.get(name)
    if tag is None:
        tag = _CAC[name] = f"{{{CAC}}}{name}"
    return _SUB(parent, tag)


def _id(parent: _Element, name: str, ident: Identifier | None) -> None:
    if ident is not None:
        cbc(parent, name, ident.value, {"schemeID": ident.scheme} if ident.scheme else None)


def customization_id(invoice: Invoice, override: str | None = None) -> str:
    """BT-24: the invoice's own specification when it has one (a converted XRechnung
    stays an XRechnung), else Peppol BIS Billing 3.0."""
    return override or invoice.specification_id or PEPPOL_CUSTOMIZATION


def profile_id(invoice: Invoice, customization: str) -> str | None:
    """BT-23: the invoice's own, else Peppol's billing process 01 when the document
    claims Peppol (which requires a profile); absent otherwise."""
    if invoice.business_process:
        return invoice.business_process
    return PEPPOL_PROFILE if PEPPOL_BILLING in customization else None


def render_ubl(invoice: Invoice, *, pretty: bool = True, specification_id: str | None = None
               ) -> bytes:
    totals = invoice.require_totals()
    credit = invoice.is_credit_note
    ns = UBL_CREDIT_NOTE if credit else UBL_INVOICE
    root = etree.Element(f"{{{ns}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: ns, "cac": CAC, "cbc": CBC})
    cur = {"currencyID": invoice.currency}

    customization = customization_id(invoice, specification_id)
    cbc(root, "CustomizationID", customization)
    cbc(root, "ProfileID", profile_id(invoice, customization))
    cbc(root, "ID", invoice.number)
    cbc(root, "IssueDate", invoice.issue_date.isoformat())
    if credit:
        if invoice.tax_point_date:
            cbc(root, "TaxPointDate", invoice.tax_point_date.isoformat())
        cbc(root, "CreditNoteTypeCode", invoice.type_code)
    else:
        if invoice.due_date:
            cbc(root, "DueDate", invoice.due_date.isoformat())
        cbc(root, "InvoiceTypeCode", invoice.type_code)
    for note in invoice.notes:
        cbc(root, "Note", f"#{note.subject_code}#{note.text}" if note.subject_code else note.text)
    if not credit and invoice.tax_point_date:
        cbc(root, "TaxPointDate", invoice.tax_point_date.isoformat())
    cbc(root, "DocumentCurrencyCode", invoice.currency)
    cbc(root, "TaxCurrencyCode", invoice.vat_accounting_currency)
    cbc(root, "AccountingCost", invoice.buyer_accounting_reference)
    cbc(root, "BuyerReference", invoice.buyer_reference)
    if invoice.invoice_period or invoice.tax_point_date_code:
        _period(root, "InvoicePeriod", invoice.invoice_period, invoice.tax_point_date_code)
    if invoice.purchase_order_reference or invoice.sales_order_reference:
        order = cac(root, "OrderReference")
        # The order id is mandatory in UBL; Peppol's convention for "sales order only" is NA.
        cbc(order, "ID", invoice.purchase_order_reference or "NA")
        cbc(order, "SalesOrderID", invoice.sales_order_reference)
    for preceding in invoice.preceding_invoices:
        ref = cac(cac(root, "BillingReference"), "InvoiceDocumentReference")
        cbc(ref, "ID", preceding.number)
        if preceding.issue_date:
            cbc(ref, "IssueDate", preceding.issue_date.isoformat())
    _doc_ref(root, "DespatchDocumentReference", invoice.despatch_advice_reference)
    _doc_ref(root, "ReceiptDocumentReference", invoice.receiving_advice_reference)
    if not credit:
        _doc_ref(root, "OriginatorDocumentReference", invoice.tender_reference)
    _doc_ref(root, "ContractDocumentReference", invoice.contract_reference)
    _additional_documents(root, invoice, credit)
    if credit:
        _doc_ref(root, "OriginatorDocumentReference", invoice.tender_reference)
    else:
        _doc_ref(root, "ProjectReference", invoice.project_reference)

    creditor_id = invoice.payment.direct_debit.creditor_id if (
        invoice.payment and invoice.payment.direct_debit) else None
    _party(cac(root, "AccountingSupplierParty"), invoice.seller,
           creditor_id=None if invoice.payee else creditor_id)
    _party(cac(root, "AccountingCustomerParty"), invoice.buyer,
           identifiers=buyer_identifiers(invoice)[:1])
    if invoice.payee:
        payee = cac(root, "PayeeParty")
        if invoice.payee.identifier:
            _id(cac(payee, "PartyIdentification"), "ID", invoice.payee.identifier)
        if creditor_id:
            cbc(cac(payee, "PartyIdentification"), "ID", creditor_id, {"schemeID": "SEPA"})
        cbc(cac(payee, "PartyName"), "Name", invoice.payee.name)
        if invoice.payee.legal_registration_id:
            _id(cac(payee, "PartyLegalEntity"), "CompanyID", invoice.payee.legal_registration_id)
    if invoice.tax_representative:
        rep = invoice.tax_representative
        party = cac(root, "TaxRepresentativeParty")
        cbc(cac(party, "PartyName"), "Name", rep.name)
        _address(party, "PostalAddress", rep.address)
        scheme = cac(party, "PartyTaxScheme")
        cbc(scheme, "CompanyID", rep.vat_id)
        cbc(cac(scheme, "TaxScheme"), "ID", "VAT")
    if invoice.delivery:
        _delivery(root, invoice)
    if invoice.payment and invoice.payment.means_code is not None:
        _payment_means(root, invoice, credit)
    elif credit and invoice.due_date:
        # A UBL credit note carries BT-9 only inside PaymentMeans; refuse rather than drop.
        raise InvoiceRejected(
            [Finding("GW-UBL-BT9", "due_date", "a UBL credit note can state its due date only "
                     "together with payment instructions (BG-16); add them or drop the date",
                     term="BT-9")], invoice=invoice.number, source="ubl")
    if invoice.payment_terms:
        cbc(cac(root, "PaymentTerms"), "Note", invoice.payment_terms)
    for ac in invoice.allowances:
        _allowance_charge(root, ac, False, cur, document_level=True)
    for ac in invoice.charges:
        _allowance_charge(root, ac, True, cur, document_level=True)

    tax_total = cac(root, "TaxTotal")
    cbc(tax_total, "TaxAmount", amount(totals.vat_total or Decimal(0)), cur)
    for b in invoice.vat_breakdown:
        sub = cac(tax_total, "TaxSubtotal")
        cbc(sub, "TaxableAmount", amount(b.taxable_amount), cur)
        cbc(sub, "TaxAmount", amount(b.tax_amount), cur)
        cat = cac(sub, "TaxCategory")
        cbc(cat, "ID", b.category.value)
        if b.rate is not None:
            cbc(cat, "Percent", number(b.rate))
        cbc(cat, "TaxExemptionReasonCode", b.exemption_reason_code)
        cbc(cat, "TaxExemptionReason", b.exemption_reason)
        cbc(cac(cat, "TaxScheme"), "ID", "VAT")
    if invoice.vat_accounting_currency and totals.vat_total_accounting_currency is not None:
        cbc(cac(root, "TaxTotal"), "TaxAmount", amount(totals.vat_total_accounting_currency),
            {"currencyID": invoice.vat_accounting_currency})

    lmt = cac(root, "LegalMonetaryTotal")
    cbc(lmt, "LineExtensionAmount", amount(totals.line_net_total), cur)
    cbc(lmt, "TaxExclusiveAmount", amount(totals.total_without_vat), cur)
    cbc(lmt, "TaxInclusiveAmount", amount(totals.total_with_vat), cur)
    if totals.allowances_total is not None:
        cbc(lmt, "AllowanceTotalAmount", amount(totals.allowances_total), cur)
    if totals.charges_total is not None:
        cbc(lmt, "ChargeTotalAmount", amount(totals.charges_total), cur)
    if totals.paid_amount is not None:
        cbc(lmt, "PrepaidAmount", amount(totals.paid_amount), cur)
    if totals.rounding_amount is not None:
        cbc(lmt, "PayableRoundingAmount", amount(totals.rounding_amount), cur)
    cbc(lmt, "PayableAmount", amount(totals.amount_due), cur)

    for line in invoice.lines:
        _line(root, line, credit, cur)
    return serialize(root, pretty=pretty)


# --------------------------------------------------------------------------- pieces


def _doc_ref(parent: _Element, name: str, value: str | None) -> None:
    if value:
        cbc(cac(parent, name), "ID", value)


def _period(parent: _Element, name: str, period: Period | None, code: str | None = None) -> None:
    el = cac(parent, name)
    if period:
        if period.start:
            cbc(el, "StartDate", period.start.isoformat())
        if period.end:
            cbc(el, "EndDate", period.end.isoformat())
    cbc(el, "DescriptionCode", code)


def _additional_documents(root: _Element, invoice: Invoice, credit: bool) -> None:
    if invoice.invoiced_object:
        ref = cac(root, "AdditionalDocumentReference")
        _id(ref, "ID", invoice.invoiced_object)
        cbc(ref, "DocumentTypeCode", INVOICED_OBJECT_CODE)
    if credit and invoice.project_reference:
        ref = cac(root, "AdditionalDocumentReference")
        cbc(ref, "ID", invoice.project_reference)
        cbc(ref, "DocumentTypeCode", PROJECT_CODE)
    for doc in invoice.supporting_documents:
        ref = cac(root, "AdditionalDocumentReference")
        cbc(ref, "ID", doc.id)
        cbc(ref, "DocumentDescription", doc.description)
        if doc.attachment or doc.uri:
            att = cac(ref, "Attachment")
            if doc.attachment:
                import base64

                cbc(att, "EmbeddedDocumentBinaryObject",
                    base64.b64encode(doc.attachment.content).decode("ascii"),
                    {"mimeCode": doc.attachment.mime_code,
                     "filename": doc.attachment.filename})
            if doc.uri:
                cbc(cac(att, "ExternalReference"), "URI", doc.uri)


def _address(parent: _Element, name: str, address: Address) -> None:
    el = cac(parent, name)
    cbc(el, "StreetName", address.line1)
    cbc(el, "AdditionalStreetName", address.line2)
    cbc(el, "CityName", address.city)
    cbc(el, "PostalZone", address.postal_code)
    cbc(el, "CountrySubentity", address.subdivision)
    if address.line3:
        cbc(cac(el, "AddressLine"), "Line", address.line3)
    cbc(cac(el, "Country"), "IdentificationCode", address.country)


def _contact(parent: _Element, contact: Contact | None) -> None:
    if contact and (contact.name or contact.telephone or contact.email):
        el = cac(parent, "Contact")
        cbc(el, "Name", contact.name)
        cbc(el, "Telephone", contact.telephone)
        cbc(el, "ElectronicMail", contact.email)


def buyer_identifiers(invoice: Invoice) -> list[Identifier]:
    """The buyer's identifiers, the one UBL can carry first (UBL-SR-16: one buyer
    identification): CII may give an ID and a GlobalID, and the one with a scheme says
    more."""
    return sorted(invoice.buyer.identifiers, key=lambda i: i.scheme is None)


def _party(parent: _Element, p: Party, *, creditor_id: str | None = None,
           identifiers: list[Identifier] | None = None) -> None:
    party = cac(parent, "Party")
    if p.electronic_address:
        cbc(party, "EndpointID", p.electronic_address.value,
            {"schemeID": p.electronic_address.scheme})
    for ident in p.identifiers if identifiers is None else identifiers:
        _id(cac(party, "PartyIdentification"), "ID", ident)
    if creditor_id:
        cbc(cac(party, "PartyIdentification"), "ID", creditor_id, {"schemeID": "SEPA"})
    if p.trading_name:
        cbc(cac(party, "PartyName"), "Name", p.trading_name)
    _address(party, "PostalAddress", p.address)
    if p.vat_id:
        scheme = cac(party, "PartyTaxScheme")
        cbc(scheme, "CompanyID", p.vat_id)
        cbc(cac(scheme, "TaxScheme"), "ID", "VAT")
    if p.tax_registration_id:
        scheme = cac(party, "PartyTaxScheme")
        cbc(scheme, "CompanyID", p.tax_registration_id)
        # Any tax scheme other than VAT marks BT-32; FC (fiscal code) is what CII uses too.
        cbc(cac(scheme, "TaxScheme"), "ID", "FC")
    legal = cac(party, "PartyLegalEntity")
    cbc(legal, "RegistrationName", p.name)
    _id(legal, "CompanyID", p.legal_registration_id)
    cbc(legal, "CompanyLegalForm", p.additional_legal_information)
    _contact(party, p.contact)


def _delivery(root: _Element, invoice: Invoice) -> None:
    d = invoice.delivery
    assert d is not None
    el = cac(root, "Delivery")
    if d.date:
        cbc(el, "ActualDeliveryDate", d.date.isoformat())
    if d.location_id or d.address:
        loc = cac(el, "DeliveryLocation")
        _id(loc, "ID", d.location_id)
        if d.address:
            _address(loc, "Address", d.address)
    if d.party_name:
        cbc(cac(cac(el, "DeliveryParty"), "PartyName"), "Name", d.party_name)


def _payment_means(root: _Element, invoice: Invoice, credit: bool) -> None:
    pay = invoice.payment
    assert pay is not None
    # UBL has one payee account per PaymentMeans, so each credit transfer gets its own.
    accounts: list[CreditTransfer | None] = [*pay.credit_transfers] or [None]
    for i, account in enumerate(accounts):
        el = cac(root, "PaymentMeans")
        # BT-82 and BT-83 occur once per document (UBL-SR-46/47): on the first only.
        cbc(el, "PaymentMeansCode", pay.means_code,
            {"name": pay.means_text} if pay.means_text and i == 0 else None)
        if credit and invoice.due_date and i == 0:
            cbc(el, "PaymentDueDate", invoice.due_date.isoformat())
        if i == 0:
            cbc(el, "PaymentID", pay.remittance_information)
        if i == 0 and pay.card:
            card = cac(el, "CardAccount")
            cbc(card, "PrimaryAccountNumberID", pay.card.account_number)
            # NetworkID is mandatory in UBL but no EN 16931 term; "NA" as Peppol's
            # own examples do when the network is unknown.
            cbc(card, "NetworkID", "NA")
            cbc(card, "HolderName", pay.card.holder_name)
        if account is not None:
            fin = cac(el, "PayeeFinancialAccount")
            cbc(fin, "ID", account.account_id)
            cbc(fin, "Name", account.account_name)
            if account.bic:
                cbc(cac(fin, "FinancialInstitutionBranch"), "ID", account.bic)
        dd = pay.direct_debit
        if i == 0 and dd and (dd.mandate_reference or dd.debited_account):
            mandate = cac(el, "PaymentMandate")
            cbc(mandate, "ID", dd.mandate_reference)
            if dd.debited_account:
                cbc(cac(mandate, "PayerFinancialAccount"), "ID", dd.debited_account)


def _allowance_charge(parent: _Element, ac: AllowanceCharge, charge: bool,
                      cur: dict[str, str], *, document_level: bool) -> None:
    el = cac(parent, "AllowanceCharge")
    cbc(el, "ChargeIndicator", "true" if charge else "false")
    cbc(el, "AllowanceChargeReasonCode", ac.reason_code)
    cbc(el, "AllowanceChargeReason", ac.reason)
    if ac.percentage is not None:
        cbc(el, "MultiplierFactorNumeric", number(ac.percentage))
    cbc(el, "Amount", amount(ac.amount), cur)
    if ac.base_amount is not None:
        cbc(el, "BaseAmount", amount(ac.base_amount), cur)
    if document_level and ac.vat_category is not None:
        cat = cac(el, "TaxCategory")
        cbc(cat, "ID", ac.vat_category.value)
        if ac.vat_rate is not None:
            cbc(cat, "Percent", number(ac.vat_rate))
        cbc(cac(cat, "TaxScheme"), "ID", "VAT")


def _line(root: _Element, line: InvoiceLine, credit: bool, cur: dict[str, str]) -> None:
    el = cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    cbc(el, "ID", line.id)
    cbc(el, "Note", line.note)
    cbc(el, "CreditedQuantity" if credit else "InvoicedQuantity", number(line.quantity),
        {"unitCode": line.unit})
    cbc(el, "LineExtensionAmount", amount(line.net_amount or Decimal(0)), cur)
    cbc(el, "AccountingCost", line.accounting_reference)
    if line.period:
        _period(el, "InvoicePeriod", line.period)
    if line.order_line_reference:
        cbc(cac(el, "OrderLineReference"), "LineID", line.order_line_reference)
    if line.object_id:
        ref = cac(el, "DocumentReference")
        _id(ref, "ID", line.object_id)
        cbc(ref, "DocumentTypeCode", INVOICED_OBJECT_CODE)
    for ac in line.allowances:
        _allowance_charge(el, ac, False, cur, document_level=False)
    for ac in line.charges:
        _allowance_charge(el, ac, True, cur, document_level=False)

    item = line.item
    it = cac(el, "Item")
    cbc(it, "Description", item.description)
    cbc(it, "Name", item.name)
    if item.buyers_id:
        cbc(cac(it, "BuyersItemIdentification"), "ID", item.buyers_id)
    if item.sellers_id:
        cbc(cac(it, "SellersItemIdentification"), "ID", item.sellers_id)
    if item.standard_id:
        _id(cac(it, "StandardItemIdentification"), "ID", item.standard_id)
    if item.origin_country:
        cbc(cac(it, "OriginCountry"), "IdentificationCode", item.origin_country)
    for cls in item.classifications:
        cbc(cac(it, "CommodityClassification"), "ItemClassificationCode", cls.value,
            {"listID": cls.scheme} if cls.scheme else None)
    cat = cac(it, "ClassifiedTaxCategory")
    cbc(cat, "ID", line.vat.category.value)
    if line.vat.rate is not None:
        cbc(cat, "Percent", number(line.vat.rate))
    cbc(cac(cat, "TaxScheme"), "ID", "VAT")
    for attr in item.attributes:
        prop = cac(it, "AdditionalItemProperty")
        cbc(prop, "Name", attr.name)
        cbc(prop, "Value", attr.value)

    price = line.price
    pr = cac(el, "Price")
    cbc(pr, "PriceAmount", number(price.net), cur)
    if price.base_quantity is not None:
        cbc(pr, "BaseQuantity", number(price.base_quantity),
            {"unitCode": price.base_quantity_unit or line.unit})
    if price.discount is not None or price.gross is not None:
        ac = cac(pr, "AllowanceCharge")
        cbc(ac, "ChargeIndicator", "false")
        cbc(ac, "Amount", number(price.discount if price.discount is not None
                                 else Decimal(0)), cur)
        if price.gross is not None:
            cbc(ac, "BaseAmount", number(price.gross), cur)
