"""Invoice model → UN/CEFACT CII D16B, EN 16931 profile (the XML inside Factur-X/ZUGFeRD).

Same approach as :mod:`.ubl_write`: lxml in the XSD's element order, deterministic bytes,
nothing invented. CII has room for one preceding invoice (BG-3) only; an invoice with
several is refused with a finding instead of silently losing the others.
"""

from __future__ import annotations

import base64
import datetime as dt
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

from .namespaces import EN16931, PEPPOL_BILLING, PEPPOL_PROFILE, QDT, RAM, RSM, UDT
from .xmlutil import amount, number, serialize

_Element = etree._Element
_SUB = etree.SubElement

INVOICED_OBJECT_CODE = "130"
TENDER_CODE = "50"
SUPPORTING_DOCUMENT_CODE = "916"
#: BT-8 is a UNTDID 2005 code in the model and UBL, a UNTDID 2475 code in CII
#: (EN 16931-3-3): invoice date, delivery date, paid-to date.
TAX_POINT_CODES_2005_TO_2475 = {"3": "5", "35": "29", "432": "72"}


_TAGS: dict[str, str] = {}


def ram(parent: _Element, name: str, text: str | None = None,
        attrs: dict[str, str] | None = None) -> _Element:
    # Called ~50 times per invoice plus ~30 per line: the Clark-notation tag is cached.
    tag = _TAGS.get(name)
    if tag is None:
        tag = _TAGS[name] = f"{{{RAM}}}{name}"
    el = _SUB(parent, tag, attrs) if attrs else _SUB(parent, tag)
    if text is not None:
        el.text = text
    return el


def opt(parent: _Element, name: str, text: str | None,
        attrs: dict[str, str] | None = None) -> None:
    if text is not None:
        ram(parent, name, text, attrs)


def _date(parent: _Element, name: str, value: dt.date, ns: str = UDT,
          element: str = "DateTimeString") -> None:
    holder = ram(parent, name)
    el = _SUB(holder, f"{{{ns}}}{element}", {"format": "102"})
    el.text = value.strftime("%Y%m%d")


def _id(parent: _Element, name: str, ident: Identifier | None) -> None:
    if ident is not None:
        ram(parent, name, ident.value, {"schemeID": ident.scheme} if ident.scheme else None)


def guideline_id(invoice: Invoice, override: str | None = None) -> str:
    """BT-24: the invoice's own specification when it has one, else plain EN 16931."""
    return override or invoice.specification_id or EN16931


def render_cii(invoice: Invoice, *, pretty: bool = True, specification_id: str | None = None
               ) -> bytes:
    totals = invoice.require_totals()
    if len(invoice.preceding_invoices) > 1:
        raise InvoiceRejected(
            [Finding("GW-CII-BG3", "preceding_invoices",
                     f"CII D16B holds one preceding invoice reference; this invoice has "
                     f"{len(invoice.preceding_invoices)} (use UBL, which allows several)",
                     term="BG-3")], invoice=invoice.number, source="cii")
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice",
                         nsmap={"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT})
    ctx = _SUB(root, f"{{{RSM}}}ExchangedDocumentContext")
    guideline = guideline_id(invoice, specification_id)
    process = invoice.business_process or (PEPPOL_PROFILE if PEPPOL_BILLING in guideline
                                           else None)
    if process:
        ram(ram(ctx, "BusinessProcessSpecifiedDocumentContextParameter"), "ID", process)
    ram(ram(ctx, "GuidelineSpecifiedDocumentContextParameter"), "ID", guideline)

    doc = _SUB(root, f"{{{RSM}}}ExchangedDocument")
    ram(doc, "ID", invoice.number)
    ram(doc, "TypeCode", invoice.type_code)
    _date(doc, "IssueDateTime", invoice.issue_date)
    for note in invoice.notes:
        n = ram(doc, "IncludedNote")
        ram(n, "Content", note.text)
        opt(n, "SubjectCode", note.subject_code)

    tx = _SUB(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line(tx, line)

    agreement = ram(tx, "ApplicableHeaderTradeAgreement")
    opt(agreement, "BuyerReference", invoice.buyer_reference)
    _party(agreement, "SellerTradeParty", invoice.seller)
    _party(agreement, "BuyerTradeParty", invoice.buyer)
    if invoice.tax_representative:
        rep = invoice.tax_representative
        party = ram(agreement, "SellerTaxRepresentativeTradeParty")
        ram(party, "Name", rep.name)
        _address(party, rep.address)
        ram(ram(party, "SpecifiedTaxRegistration"), "ID", rep.vat_id, {"schemeID": "VA"})
    if invoice.sales_order_reference:
        ram(ram(agreement, "SellerOrderReferencedDocument"), "IssuerAssignedID",
            invoice.sales_order_reference)
    if invoice.purchase_order_reference:
        ram(ram(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID",
            invoice.purchase_order_reference)
    if invoice.contract_reference:
        ram(ram(agreement, "ContractReferencedDocument"), "IssuerAssignedID",
            invoice.contract_reference)
    for sd in invoice.supporting_documents:
        ref = ram(agreement, "AdditionalReferencedDocument")
        ram(ref, "IssuerAssignedID", sd.id)
        opt(ref, "URIID", sd.uri)
        ram(ref, "TypeCode", SUPPORTING_DOCUMENT_CODE)
        opt(ref, "Name", sd.description)
        if sd.attachment:
            ram(ref, "AttachmentBinaryObject",
                base64.b64encode(sd.attachment.content).decode("ascii"),
                {"mimeCode": sd.attachment.mime_code, "filename": sd.attachment.filename})
    if invoice.tender_reference:
        ref = ram(agreement, "AdditionalReferencedDocument")
        ram(ref, "IssuerAssignedID", invoice.tender_reference)
        ram(ref, "TypeCode", TENDER_CODE)
    if invoice.invoiced_object:
        ref = ram(agreement, "AdditionalReferencedDocument")
        ram(ref, "IssuerAssignedID", invoice.invoiced_object.value)
        ram(ref, "TypeCode", INVOICED_OBJECT_CODE)
        opt(ref, "ReferenceTypeCode", invoice.invoiced_object.scheme)
    if invoice.project_reference:
        project = ram(agreement, "SpecifiedProcuringProject")
        ram(project, "ID", invoice.project_reference)
        # Name is mandatory in CII and EN 16931 has no term for it; this is the
        # placeholder the CEN syntax binding prescribes.
        ram(project, "Name", "Project reference")

    delivery = ram(tx, "ApplicableHeaderTradeDelivery")
    d = invoice.delivery
    if d and (d.party_name or d.location_id or d.address):
        ship = ram(delivery, "ShipToTradeParty")
        if d.location_id:
            if d.location_id.scheme:
                _id(ship, "GlobalID", d.location_id)
            else:
                ram(ship, "ID", d.location_id.value)
        opt(ship, "Name", d.party_name)
        if d.address:
            _address(ship, d.address)
    if d and d.date:
        _date(ram(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", d.date)
    if invoice.despatch_advice_reference:
        ram(ram(delivery, "DespatchAdviceReferencedDocument"), "IssuerAssignedID",
            invoice.despatch_advice_reference)
    if invoice.receiving_advice_reference:
        ram(ram(delivery, "ReceivingAdviceReferencedDocument"), "IssuerAssignedID",
            invoice.receiving_advice_reference)

    settlement = ram(tx, "ApplicableHeaderTradeSettlement")
    pay = invoice.payment
    dd = pay.direct_debit if pay else None
    if dd:
        opt(settlement, "CreditorReferenceID", dd.creditor_id)
    if pay:
        opt(settlement, "PaymentReference", pay.remittance_information)
    opt(settlement, "TaxCurrencyCode", invoice.vat_accounting_currency)
    ram(settlement, "InvoiceCurrencyCode", invoice.currency)
    if invoice.payee:
        payee = ram(settlement, "PayeeTradeParty")
        if invoice.payee.identifier:
            _party_id(payee, invoice.payee.identifier)
        ram(payee, "Name", invoice.payee.name)
        if invoice.payee.legal_registration_id:
            _id(ram(payee, "SpecifiedLegalOrganization"), "ID",
                invoice.payee.legal_registration_id)
    if pay and pay.means_code is not None:
        _payment_means(settlement, invoice)
    for i, b in enumerate(invoice.vat_breakdown):
        tax = ram(settlement, "ApplicableTradeTax")
        ram(tax, "CalculatedAmount", amount(b.tax_amount))
        ram(tax, "TypeCode", "VAT")
        opt(tax, "ExemptionReason", b.exemption_reason)
        ram(tax, "BasisAmount", amount(b.taxable_amount))
        ram(tax, "CategoryCode", b.category.value)
        opt(tax, "ExemptionReasonCode", b.exemption_reason_code)
        if invoice.tax_point_date and i == 0:  # once per document (CII-SR-461)
            _date(tax, "TaxPointDate", invoice.tax_point_date, element="DateString")
        if i == 0 and invoice.tax_point_date_code:
            code = invoice.tax_point_date_code
            ram(tax, "DueDateTypeCode", TAX_POINT_CODES_2005_TO_2475.get(code, code))
        if b.rate is not None:
            ram(tax, "RateApplicablePercent", number(b.rate))
    if invoice.invoice_period:
        _period(settlement, invoice.invoice_period)
    for ac in invoice.allowances:
        _allowance_charge(settlement, ac, False, document_level=True)
    for ac in invoice.charges:
        _allowance_charge(settlement, ac, True, document_level=True)
    if invoice.payment_terms or invoice.due_date or (dd and dd.mandate_reference):
        terms = ram(settlement, "SpecifiedTradePaymentTerms")
        opt(terms, "Description", invoice.payment_terms)
        if invoice.due_date:
            _date(terms, "DueDateDateTime", invoice.due_date)
        if dd:
            opt(terms, "DirectDebitMandateID", dd.mandate_reference)

    summary = ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    ram(summary, "LineTotalAmount", amount(totals.line_net_total))
    if totals.charges_total is not None:
        ram(summary, "ChargeTotalAmount", amount(totals.charges_total))
    if totals.allowances_total is not None:
        ram(summary, "AllowanceTotalAmount", amount(totals.allowances_total))
    ram(summary, "TaxBasisTotalAmount", amount(totals.total_without_vat))
    ram(summary, "TaxTotalAmount", amount(totals.vat_total or Decimal(0)),
        {"currencyID": invoice.currency})
    if invoice.vat_accounting_currency and totals.vat_total_accounting_currency is not None:
        ram(summary, "TaxTotalAmount", amount(totals.vat_total_accounting_currency),
            {"currencyID": invoice.vat_accounting_currency})
    if totals.rounding_amount is not None:
        ram(summary, "RoundingAmount", amount(totals.rounding_amount))
    ram(summary, "GrandTotalAmount", amount(totals.total_with_vat))
    if totals.paid_amount is not None:
        ram(summary, "TotalPrepaidAmount", amount(totals.paid_amount))
    ram(summary, "DuePayableAmount", amount(totals.amount_due))
    for preceding in invoice.preceding_invoices:
        ref = ram(settlement, "InvoiceReferencedDocument")
        ram(ref, "IssuerAssignedID", preceding.number)
        if preceding.issue_date:
            _date(ref, "FormattedIssueDateTime", preceding.issue_date, ns=QDT)
    if invoice.buyer_accounting_reference:
        ram(ram(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID",
            invoice.buyer_accounting_reference)
    return serialize(root, pretty=pretty)


# --------------------------------------------------------------------------- pieces


def _party_id(parent: _Element, ident: Identifier) -> None:
    # CII splits BT-29/46/60: ram:ID has no scheme, ram:GlobalID must have one.
    if ident.scheme:
        ram(parent, "GlobalID", ident.value, {"schemeID": ident.scheme})
    else:
        ram(parent, "ID", ident.value)


def _address(parent: _Element, address: Address) -> None:
    el = ram(parent, "PostalTradeAddress")
    opt(el, "PostcodeCode", address.postal_code)
    opt(el, "LineOne", address.line1)
    opt(el, "LineTwo", address.line2)
    opt(el, "LineThree", address.line3)
    opt(el, "CityName", address.city)
    ram(el, "CountryID", address.country)
    opt(el, "CountrySubDivisionName", address.subdivision)


def _contact(parent: _Element, contact: Contact | None) -> None:
    if contact and (contact.name or contact.telephone or contact.email):
        el = ram(parent, "DefinedTradeContact")
        opt(el, "PersonName", contact.name)
        if contact.telephone:
            ram(ram(el, "TelephoneUniversalCommunication"), "CompleteNumber", contact.telephone)
        if contact.email:
            ram(ram(el, "EmailURIUniversalCommunication"), "URIID", contact.email)


def _party(parent: _Element, name: str, p: Party) -> None:
    party = ram(parent, name)
    plain = [i for i in p.identifiers if not i.scheme]
    schemed = [i for i in p.identifiers if i.scheme]
    for ident in plain:
        ram(party, "ID", ident.value)
    for ident in schemed:
        ram(party, "GlobalID", ident.value, {"schemeID": ident.scheme or ""})
    ram(party, "Name", p.name)
    opt(party, "Description", p.additional_legal_information)
    if p.legal_registration_id or p.trading_name:
        legal = ram(party, "SpecifiedLegalOrganization")
        _id(legal, "ID", p.legal_registration_id)
        opt(legal, "TradingBusinessName", p.trading_name)
    _contact(party, p.contact)
    _address(party, p.address)
    if p.electronic_address:
        ram(ram(party, "URIUniversalCommunication"), "URIID", p.electronic_address.value,
            {"schemeID": p.electronic_address.scheme})
    if p.vat_id:
        ram(ram(party, "SpecifiedTaxRegistration"), "ID", p.vat_id, {"schemeID": "VA"})
    if p.tax_registration_id:
        ram(ram(party, "SpecifiedTaxRegistration"), "ID", p.tax_registration_id,
            {"schemeID": "FC"})


def _period(parent: _Element, period: Period) -> None:
    if period.start or period.end:
        el = ram(parent, "BillingSpecifiedPeriod")
        if period.start:
            _date(el, "StartDateTime", period.start)
        if period.end:
            _date(el, "EndDateTime", period.end)


def _payment_means(settlement: _Element, invoice: Invoice) -> None:
    pay = invoice.payment
    assert pay is not None
    accounts: list[CreditTransfer | None] = [*pay.credit_transfers] or [None]
    for i, account in enumerate(accounts):
        el = ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        ram(el, "TypeCode", pay.means_code)
        opt(el, "Information", pay.means_text)
        if i == 0 and pay.card:
            card = ram(el, "ApplicableTradeSettlementFinancialCard")
            ram(card, "ID", pay.card.account_number)
            opt(card, "CardholderName", pay.card.holder_name)
        dd = pay.direct_debit
        if i == 0 and dd and dd.debited_account:
            ram(ram(el, "PayerPartyDebtorFinancialAccount"), "IBANID", dd.debited_account)
        if account is not None:
            fin = ram(el, "PayeePartyCreditorFinancialAccount")
            ram(fin, "IBANID", account.account_id)
            opt(fin, "AccountName", account.account_name)
            if account.bic:
                ram(ram(el, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID",
                    account.bic)


def _allowance_charge(parent: _Element, ac: AllowanceCharge, charge: bool, *,
                      document_level: bool) -> None:
    el = ram(parent, "SpecifiedTradeAllowanceCharge")
    indicator = ram(el, "ChargeIndicator")
    _SUB(indicator, f"{{{UDT}}}Indicator").text = "true" if charge else "false"
    if ac.percentage is not None:
        ram(el, "CalculationPercent", number(ac.percentage))
    if ac.base_amount is not None:
        ram(el, "BasisAmount", amount(ac.base_amount))
    ram(el, "ActualAmount", amount(ac.amount))
    opt(el, "ReasonCode", ac.reason_code)
    opt(el, "Reason", ac.reason)
    if document_level and ac.vat_category is not None:
        tax = ram(el, "CategoryTradeTax")
        ram(tax, "TypeCode", "VAT")
        ram(tax, "CategoryCode", ac.vat_category.value)
        if ac.vat_rate is not None:
            ram(tax, "RateApplicablePercent", number(ac.vat_rate))


def _line(tx: _Element, line: InvoiceLine) -> None:
    item = ram(tx, "IncludedSupplyChainTradeLineItem")
    doc = ram(item, "AssociatedDocumentLineDocument")
    ram(doc, "LineID", line.id)
    if line.note:
        ram(ram(doc, "IncludedNote"), "Content", line.note)

    it = line.item
    product = ram(item, "SpecifiedTradeProduct")
    if it.standard_id:
        _id(product, "GlobalID", it.standard_id)
    opt(product, "SellerAssignedID", it.sellers_id)
    opt(product, "BuyerAssignedID", it.buyers_id)
    ram(product, "Name", it.name)
    opt(product, "Description", it.description)
    for attr in it.attributes:
        char = ram(product, "ApplicableProductCharacteristic")
        ram(char, "Description", attr.name)
        ram(char, "Value", attr.value)
    for cls in it.classifications:
        ram(ram(product, "DesignatedProductClassification"), "ClassCode", cls.value,
            {"listID": cls.scheme} if cls.scheme else None)
    if it.origin_country:
        ram(ram(product, "OriginTradeCountry"), "ID", it.origin_country)

    agreement = ram(item, "SpecifiedLineTradeAgreement")
    if line.order_line_reference:
        ram(ram(agreement, "BuyerOrderReferencedDocument"), "LineID", line.order_line_reference)
    price = line.price
    base_attrs = {"unitCode": price.base_quantity_unit or line.unit}
    if price.gross is not None or price.discount is not None:
        gross = ram(agreement, "GrossPriceProductTradePrice")
        gross_value = price.gross if price.gross is not None else price.net + (
            price.discount or Decimal(0))
        ram(gross, "ChargeAmount", number(gross_value))
        if price.base_quantity is not None:
            ram(gross, "BasisQuantity", number(price.base_quantity), base_attrs)
        if price.discount is not None:
            ac = ram(gross, "AppliedTradeAllowanceCharge")
            _SUB(ram(ac, "ChargeIndicator"), f"{{{UDT}}}Indicator").text = "false"
            ram(ac, "ActualAmount", number(price.discount))
    net = ram(agreement, "NetPriceProductTradePrice")
    ram(net, "ChargeAmount", number(price.net))
    if price.base_quantity is not None:
        ram(net, "BasisQuantity", number(price.base_quantity), base_attrs)

    delivery = ram(item, "SpecifiedLineTradeDelivery")
    ram(delivery, "BilledQuantity", number(line.quantity), {"unitCode": line.unit})

    settlement = ram(item, "SpecifiedLineTradeSettlement")
    tax = ram(settlement, "ApplicableTradeTax")
    ram(tax, "TypeCode", "VAT")
    ram(tax, "CategoryCode", line.vat.category.value)
    if line.vat.rate is not None:
        ram(tax, "RateApplicablePercent", number(line.vat.rate))
    if line.period:
        _period(settlement, line.period)
    for ac in line.allowances:
        _allowance_charge(settlement, ac, False, document_level=False)
    for ac in line.charges:
        _allowance_charge(settlement, ac, True, document_level=False)
    summation = ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    ram(summation, "LineTotalAmount", amount(line.net_amount or Decimal(0)))
    if line.object_id:
        ref = ram(settlement, "AdditionalReferencedDocument")
        ram(ref, "IssuerAssignedID", line.object_id.value)
        ram(ref, "TypeCode", INVOICED_OBJECT_CODE)
        opt(ref, "ReferenceTypeCode", line.object_id.scheme)
    if line.accounting_reference:
        ram(ram(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID",
            line.accounting_reference)
