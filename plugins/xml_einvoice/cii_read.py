"""CII D16B CrossIndustryInvoice → invoice model data (a dict for ``load_invoice``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lxml import etree

from .cii_write import INVOICED_OBJECT_CODE, TAX_POINT_CODES_2005_TO_2475, TENDER_CODE
from .namespaces import CII_NS
from .reading import Cursor, Data
from .reading import clean as _clean
from .reading import decimal_at as _dec
from .reading import identifier as _ident
from .xmlutil import parse_cii_date, parse_decimal

_TAX_POINT_CODES_2475_TO_2005 = {v: k for k, v in TAX_POINT_CODES_2005_TO_2475.items()}


def _date(c: Cursor | None, path: str) -> Any:
    if c is None:
        return None
    holder = c.find(path)
    if holder is None:
        return None
    value = (holder.find("udt:DateTimeString") or holder.find("qdt:DateTimeString")
             or holder.find("udt:DateString"))
    if value is None or value.text() is None:
        return None
    return parse_cii_date(value.text() or "", value.attr("format"))


def read_cii(root: etree._Element, seen: set[etree._Element]) -> Data:
    doc = Cursor(root, CII_NS, seen)
    ctx = doc.find("rsm:ExchangedDocumentContext")
    exchanged = doc.find("rsm:ExchangedDocument")
    tx = doc.find("rsm:SupplyChainTradeTransaction")
    data: Data = {}
    if ctx is not None:
        data["business_process"] = ctx.text(
            "ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID")
        data["specification_id"] = ctx.text(
            "ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")
    if exchanged is not None:
        data["number"] = exchanged.text("ram:ID")
        data["type_code"] = exchanged.text("ram:TypeCode")
        data["issue_date"] = _date(exchanged, "ram:IssueDateTime")
        data["notes"] = [
            _clean({"text": n.text("ram:Content"), "subject_code": n.text("ram:SubjectCode")})
            for n in exchanged.findall("ram:IncludedNote") if n.text("ram:Content")
        ]
    if tx is None:
        return _clean(data)

    agreement = tx.find("ram:ApplicableHeaderTradeAgreement")
    if agreement is not None:
        data["buyer_reference"] = agreement.text("ram:BuyerReference")
        seller = agreement.find("ram:SellerTradeParty")
        if seller is not None:
            data["seller"] = _party(seller)
        buyer = agreement.find("ram:BuyerTradeParty")
        if buyer is not None:
            data["buyer"] = _party(buyer)
        rep = agreement.find("ram:SellerTaxRepresentativeTradeParty")
        if rep is not None:
            data["tax_representative"] = _clean({
                "name": rep.text("ram:Name"),
                "vat_id": rep.text("ram:SpecifiedTaxRegistration/ram:ID"),
                "address": _address(rep.find("ram:PostalTradeAddress")),
            })
        data["sales_order_reference"] = agreement.text(
            "ram:SellerOrderReferencedDocument/ram:IssuerAssignedID")
        data["purchase_order_reference"] = agreement.text(
            "ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID")
        data["contract_reference"] = agreement.text(
            "ram:ContractReferencedDocument/ram:IssuerAssignedID")
        supporting = []
        for ref in agreement.findall("ram:AdditionalReferencedDocument"):
            code = ref.text("ram:TypeCode")
            if code == TENDER_CODE and "tender_reference" not in data:
                data["tender_reference"] = ref.text("ram:IssuerAssignedID")
            elif code == INVOICED_OBJECT_CODE and "invoiced_object" not in data:
                data["invoiced_object"] = _clean({
                    "value": ref.text("ram:IssuerAssignedID"),
                    "scheme": ref.text("ram:ReferenceTypeCode")})
            else:
                supporting.append(_supporting(ref, code))
        data["supporting_documents"] = supporting
        project = agreement.find("ram:SpecifiedProcuringProject")
        if project is not None:
            project.find("ram:Name")
            data["project_reference"] = project.text("ram:ID")

    delivery = tx.find("ram:ApplicableHeaderTradeDelivery")
    if delivery is not None:
        ship = delivery.find("ram:ShipToTradeParty")
        d: Data = {"date": _date(delivery, "ram:ActualDeliverySupplyChainEvent/"
                                           "ram:OccurrenceDateTime")}
        if ship is not None:
            d["party_name"] = ship.text("ram:Name")
            d["location_id"] = _ident(ship.find("ram:GlobalID")) or _ident(ship.find("ram:ID"))
            d["address"] = _address(ship.find("ram:PostalTradeAddress"))
        d = _clean(d)
        if d:
            data["delivery"] = d
        data["despatch_advice_reference"] = delivery.text(
            "ram:DespatchAdviceReferencedDocument/ram:IssuerAssignedID")
        data["receiving_advice_reference"] = delivery.text(
            "ram:ReceivingAdviceReferencedDocument/ram:IssuerAssignedID")

    settlement = tx.find("ram:ApplicableHeaderTradeSettlement")
    if settlement is not None:
        _settlement(settlement, data)

    data["lines"] = [_line(c) for c in tx.findall("ram:IncludedSupplyChainTradeLineItem")]
    return _clean(data)


# --------------------------------------------------------------------------- pieces


def _address(c: Cursor | None) -> Data | None:
    if c is None:
        return None
    return _clean({
        "postal_code": c.text("ram:PostcodeCode"),
        "line1": c.text("ram:LineOne"),
        "line2": c.text("ram:LineTwo"),
        "line3": c.text("ram:LineThree"),
        "city": c.text("ram:CityName"),
        "country": c.text("ram:CountryID"),
        "subdivision": c.text("ram:CountrySubDivisionName"),
    })


def _party(c: Cursor) -> Data:
    identifiers = [{"value": i.text()} for i in c.findall("ram:ID") if i.text()]
    identifiers += [v for i in c.findall("ram:GlobalID") if (v := _ident(i))]
    party: Data = {
        "name": c.text("ram:Name"),
        "identifiers": identifiers,
        "address": _address(c.find("ram:PostalTradeAddress")),
    }
    party["additional_legal_information"] = c.text("ram:Description")
    legal = c.find("ram:SpecifiedLegalOrganization")
    if legal is not None:
        party["legal_registration_id"] = _ident(legal.find("ram:ID"))
        party["trading_name"] = legal.text("ram:TradingBusinessName")
    contact = c.find("ram:DefinedTradeContact")
    if contact is not None:
        party["contact"] = _clean({
            "name": contact.text("ram:PersonName") or contact.text("ram:DepartmentName"),
            "telephone": contact.text("ram:TelephoneUniversalCommunication/ram:CompleteNumber"),
            "email": contact.text("ram:EmailURIUniversalCommunication/ram:URIID"),
        }) or None
    uri = c.find("ram:URIUniversalCommunication/ram:URIID")
    if uri is not None and uri.text():
        party["electronic_address"] = _clean({"value": uri.text(), "scheme": uri.attr("schemeID")})
    for reg in c.findall("ram:SpecifiedTaxRegistration/ram:ID"):
        key = "vat_id" if (reg.attr("schemeID") or "").upper() == "VA" else "tax_registration_id"
        party.setdefault(key, reg.text())
    return _clean(party)


def _supporting(ref: Cursor, code: str | None) -> Data:
    doc: Data = {"id": ref.text("ram:IssuerAssignedID"), "uri": ref.text("ram:URIID"),
                 "description": ref.text("ram:Name")}
    blob = ref.find("ram:AttachmentBinaryObject")
    if blob is not None:
        try:
            content: Any = base64.b64decode(blob.el.text or "", validate=False)
        except (binascii.Error, ValueError):
            content = None
        doc["attachment"] = _clean({"content": content, "mime_code": blob.attr("mimeCode"),
                                    "filename": blob.attr("filename")})
    return _clean(doc)


def _settlement(s: Cursor, data: Data) -> None:
    creditor_id = s.text("ram:CreditorReferenceID")
    remittance = s.text("ram:PaymentReference")
    data["vat_accounting_currency"] = s.text("ram:TaxCurrencyCode")
    data["currency"] = s.text("ram:InvoiceCurrencyCode")
    payee = s.find("ram:PayeeTradeParty")
    if payee is not None:
        ident = _ident(payee.find("ram:GlobalID")) or (
            {"value": payee.text("ram:ID")} if payee.text("ram:ID") else None)
        data["payee"] = _clean({
            "name": payee.text("ram:Name"),
            "identifier": ident,
            "legal_registration_id": _ident(payee.find("ram:SpecifiedLegalOrganization/ram:ID")),
        })

    means = s.findall("ram:SpecifiedTradeSettlementPaymentMeans")
    terms = s.find("ram:SpecifiedTradePaymentTerms")
    mandate = terms.text("ram:DirectDebitMandateID") if terms else None
    if means or creditor_id or remittance or mandate:
        first = means[0] if means else None
        payment: Data = {
            "means_code": first.text("ram:TypeCode") if first else None,
            "means_text": first.text("ram:Information") if first else None,
            "remittance_information": remittance,
        }
        transfers = []
        debited = None
        for m in means:
            m.find("ram:TypeCode")
            m.find("ram:Information")
            account = m.find("ram:PayeePartyCreditorFinancialAccount")
            if account is not None:
                transfers.append(_clean({
                    "account_id": account.text("ram:IBANID") or account.text("ram:ProprietaryID"),
                    "account_name": account.text("ram:AccountName"),
                    "bic": m.text("ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID"),
                }))
            debited = debited or m.text("ram:PayerPartyDebtorFinancialAccount/ram:IBANID")
            card = m.find("ram:ApplicableTradeSettlementFinancialCard")
            if card is not None and "card" not in payment:
                payment["card"] = _clean({"account_number": card.text("ram:ID"),
                                          "holder_name": card.text("ram:CardholderName")})
        payment["credit_transfers"] = transfers
        if creditor_id or mandate or debited:
            payment["direct_debit"] = _clean({"mandate_reference": mandate,
                                              "creditor_id": creditor_id,
                                              "debited_account": debited})
        data["payment"] = _clean(payment)

    breakdown = []
    for tax in s.findall("ram:ApplicableTradeTax"):
        tax.find("ram:TypeCode")
        breakdown.append(_clean({
            "tax_amount": _dec(tax, "ram:CalculatedAmount"),
            "taxable_amount": _dec(tax, "ram:BasisAmount"),
            "category": tax.text("ram:CategoryCode"),
            "rate": _dec(tax, "ram:RateApplicablePercent"),
            "exemption_reason": tax.text("ram:ExemptionReason"),
            "exemption_reason_code": tax.text("ram:ExemptionReasonCode"),
        }))
        point = _date(tax, "ram:TaxPointDate")
        if point is not None and not data.get("tax_point_date"):
            data["tax_point_date"] = point
        code = tax.text("ram:DueDateTypeCode")
        if code and not data.get("tax_point_date_code"):
            data["tax_point_date_code"] = _TAX_POINT_CODES_2475_TO_2005.get(code, code)
    data["vat_breakdown"] = breakdown

    period = s.find("ram:BillingSpecifiedPeriod")
    if period is not None:
        data["invoice_period"] = _clean({"start": _date(period, "ram:StartDateTime"),
                                         "end": _date(period, "ram:EndDateTime")}) or None

    allowances, charges = [], []
    for ac in s.findall("ram:SpecifiedTradeAllowanceCharge"):
        is_charge, item = _allowance_charge(ac, document_level=True)
        (charges if is_charge else allowances).append(item)
    data["allowances"], data["charges"] = allowances, charges

    if terms is not None:
        data["payment_terms"] = terms.text("ram:Description")
        data["due_date"] = _date(terms, "ram:DueDateDateTime")

    summary = s.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    if summary is not None:
        vat_total = vat_accounting = None
        for t in summary.findall("ram:TaxTotalAmount"):
            currency = t.attr("currencyID")
            value = parse_decimal(t.text() or "")
            if currency and currency == data.get("vat_accounting_currency") \
                    and currency != data.get("currency"):
                vat_accounting = value
            else:
                vat_total = value
        data["totals"] = _clean({
            "line_net_total": _dec(summary, "ram:LineTotalAmount"),
            "charges_total": _dec(summary, "ram:ChargeTotalAmount"),
            "allowances_total": _dec(summary, "ram:AllowanceTotalAmount"),
            "total_without_vat": _dec(summary, "ram:TaxBasisTotalAmount"),
            "vat_total": vat_total,
            "vat_total_accounting_currency": vat_accounting,
            "rounding_amount": _dec(summary, "ram:RoundingAmount"),
            "total_with_vat": _dec(summary, "ram:GrandTotalAmount"),
            "paid_amount": _dec(summary, "ram:TotalPrepaidAmount"),
            "amount_due": _dec(summary, "ram:DuePayableAmount"),
        })
    data["preceding_invoices"] = [
        _clean({"number": r.text("ram:IssuerAssignedID"),
                "issue_date": _date(r, "ram:FormattedIssueDateTime")})
        for r in s.findall("ram:InvoiceReferencedDocument")
    ]
    data["buyer_accounting_reference"] = s.text("ram:ReceivableSpecifiedTradeAccountingAccount/"
                                                "ram:ID")


def _allowance_charge(c: Cursor, *, document_level: bool) -> tuple[bool, Data]:
    is_charge = (c.text("ram:ChargeIndicator/udt:Indicator") or "").lower() == "true"
    item: Data = {
        "amount": _dec(c, "ram:ActualAmount"),
        "base_amount": _dec(c, "ram:BasisAmount"),
        "percentage": _dec(c, "ram:CalculationPercent"),
        "reason": c.text("ram:Reason"),
        "reason_code": c.text("ram:ReasonCode"),
    }
    if document_level:
        tax = c.find("ram:CategoryTradeTax")
        if tax is not None:
            tax.find("ram:TypeCode")
            item["vat_category"] = tax.text("ram:CategoryCode")
            item["vat_rate"] = _dec(tax, "ram:RateApplicablePercent")
    return is_charge, _clean(item)


def _line(c: Cursor) -> Data:
    doc = c.find("ram:AssociatedDocumentLineDocument")
    line: Data = {
        "id": doc.text("ram:LineID") if doc else None,
        "note": doc.text("ram:IncludedNote/ram:Content") if doc else None,
    }
    product = c.find("ram:SpecifiedTradeProduct")
    if product is not None:
        line["item"] = _clean({
            "standard_id": _ident(product.find("ram:GlobalID")),
            "sellers_id": product.text("ram:SellerAssignedID"),
            "buyers_id": product.text("ram:BuyerAssignedID"),
            "name": product.text("ram:Name"),
            "description": product.text("ram:Description"),
            "attributes": [
                _clean({"name": a.text("ram:Description"), "value": a.text("ram:Value")})
                for a in product.findall("ram:ApplicableProductCharacteristic")
            ],
            "classifications": [
                _clean({"value": k.text(), "scheme": k.attr("listID")})
                for k in product.findall("ram:DesignatedProductClassification/ram:ClassCode")
                if k.text()
            ],
            "origin_country": product.text("ram:OriginTradeCountry/ram:ID"),
        })
    agreement = c.find("ram:SpecifiedLineTradeAgreement")
    price: Data = {}
    if agreement is not None:
        line["order_line_reference"] = agreement.text(
            "ram:BuyerOrderReferencedDocument/ram:LineID")
        gross = agreement.find("ram:GrossPriceProductTradePrice")
        if gross is not None:
            price["gross"] = _dec(gross, "ram:ChargeAmount")
            gross.find("ram:BasisQuantity")
            discount = gross.find("ram:AppliedTradeAllowanceCharge")
            if discount is not None:
                discount.find("ram:ChargeIndicator/udt:Indicator")
                price["discount"] = _dec(discount, "ram:ActualAmount")
        net = agreement.find("ram:NetPriceProductTradePrice")
        if net is not None:
            price["net"] = _dec(net, "ram:ChargeAmount")
            base = net.find("ram:BasisQuantity")
            if base is not None:
                price["base_quantity"] = parse_decimal(base.text() or "")
                price["base_quantity_unit"] = base.attr("unitCode")
    delivery = c.find("ram:SpecifiedLineTradeDelivery")
    qty = delivery.find("ram:BilledQuantity") if delivery else None
    if qty is not None:
        line["quantity"] = parse_decimal(qty.text() or "")
        line["unit"] = qty.attr("unitCode")
    if price.get("base_quantity_unit") == line.get("unit"):
        price.pop("base_quantity_unit", None)
    line["price"] = _clean(price)

    settlement = c.find("ram:SpecifiedLineTradeSettlement")
    if settlement is not None:
        tax = settlement.find("ram:ApplicableTradeTax")
        if tax is not None:
            tax.find("ram:TypeCode")
            line["vat"] = _clean({"category": tax.text("ram:CategoryCode"),
                                  "rate": _dec(tax, "ram:RateApplicablePercent")})
        period = settlement.find("ram:BillingSpecifiedPeriod")
        if period is not None:
            line["period"] = _clean({"start": _date(period, "ram:StartDateTime"),
                                     "end": _date(period, "ram:EndDateTime")}) or None
        allowances, charges = [], []
        for ac in settlement.findall("ram:SpecifiedTradeAllowanceCharge"):
            is_charge, item = _allowance_charge(ac, document_level=False)
            (charges if is_charge else allowances).append(item)
        line["allowances"], line["charges"] = allowances, charges
        line["net_amount"] = _dec(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation/"
                                              "ram:LineTotalAmount")
        ref = settlement.find("ram:AdditionalReferencedDocument")
        if ref is not None:
            ref.find("ram:TypeCode")
            line["object_id"] = _clean({"value": ref.text("ram:IssuerAssignedID"),
                                        "scheme": ref.text("ram:ReferenceTypeCode")}) or None
        line["accounting_reference"] = settlement.text(
            "ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID")
    return _clean(line)
