"""UBL 2.1 Invoice / CreditNote → invoice model data (a dict for ``load_invoice``).

The reader collects plain values; the model's own validation then names any field
that is missing or malformed, with its business term and rule. Totals and the VAT
breakdown are read as stated, so the core's ``complete()`` checks them against the
lines instead of silently recomputing them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lxml import etree

from .namespaces import UBL_NS
from .reading import Cursor, Data
from .reading import clean as _clean
from .reading import decimal_at as _dec
from .reading import identifier as _ident
from .ubl_write import INVOICED_OBJECT_CODE, PROJECT_CODE
from .xmlutil import parse_decimal, parse_iso_date


def _date(c: Cursor, path: str) -> Any:
    text = c.text(path)
    return parse_iso_date(text) if text is not None else None


def read_ubl(root: etree._Element, seen: set[etree._Element]) -> Data:
    doc = Cursor(root, UBL_NS, seen)
    credit = etree.QName(root).localname == "CreditNote"
    for path in ("cbc:UBLVersionID",):
        doc.find(path)
    data: Data = {
        "number": doc.text("cbc:ID"),
        "issue_date": _date(doc, "cbc:IssueDate"),
        "type_code": doc.text("cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode"),
        "currency": doc.text("cbc:DocumentCurrencyCode"),
        "vat_accounting_currency": doc.text("cbc:TaxCurrencyCode"),
        "tax_point_date": _date(doc, "cbc:TaxPointDate"),
        "due_date": _date(doc, "cbc:DueDate"),
        "buyer_reference": doc.text("cbc:BuyerReference"),
        "contract_reference": doc.text("cac:ContractDocumentReference/cbc:ID"),
        "receiving_advice_reference": doc.text("cac:ReceiptDocumentReference/cbc:ID"),
        "despatch_advice_reference": doc.text("cac:DespatchDocumentReference/cbc:ID"),
        "tender_reference": doc.text("cac:OriginatorDocumentReference/cbc:ID"),
        "project_reference": doc.text("cac:ProjectReference/cbc:ID"),
        "buyer_accounting_reference": doc.text("cbc:AccountingCost"),
        "payment_terms": doc.text("cac:PaymentTerms/cbc:Note"),
        "business_process": doc.text("cbc:ProfileID"),
        "specification_id": doc.text("cbc:CustomizationID"),
    }
    order = doc.find("cac:OrderReference")
    if order is not None:
        po = order.text("cbc:ID")
        sales = order.text("cbc:SalesOrderID")
        # "NA" is Peppol's placeholder for "only a sales order reference".
        data["purchase_order_reference"] = None if (po == "NA" and sales) else po
        data["sales_order_reference"] = sales

    notes = []
    for n in doc.findall("cbc:Note"):
        text = n.text() or ""
        code = None
        if text.startswith("#") and text.count("#") >= 2:
            code, _, text = text[1:].partition("#")
        if text.strip():
            notes.append(_clean({"text": text.strip(), "subject_code": code or None}))
    data["notes"] = notes

    period = doc.find("cac:InvoicePeriod")
    if period is not None:
        data["invoice_period"] = _period(period)
        data["tax_point_date_code"] = period.text("cbc:DescriptionCode")

    data["preceding_invoices"] = [
        _clean({"number": r.text("cbc:ID"), "issue_date": _date(r, "cbc:IssueDate")})
        for r in doc.findall("cac:BillingReference/cac:InvoiceDocumentReference")
    ]

    supporting = []
    for ref in doc.findall("cac:AdditionalDocumentReference"):
        code = ref.text("cbc:DocumentTypeCode")
        if code == INVOICED_OBJECT_CODE and "invoiced_object" not in data:
            data["invoiced_object"] = _ident(ref.find("cbc:ID"))
            continue
        if code == PROJECT_CODE and not data.get("project_reference"):
            data["project_reference"] = ref.text("cbc:ID")
            continue
        supporting.append(_supporting(ref))
    data["supporting_documents"] = supporting

    creditor_id: str | None = None
    seller_c = doc.find("cac:AccountingSupplierParty/cac:Party")
    if seller_c is not None:
        data["seller"], creditor_id = _party(seller_c)
    buyer_c = doc.find("cac:AccountingCustomerParty/cac:Party")
    if buyer_c is not None:
        data["buyer"], _ = _party(buyer_c)
    payee_c = doc.find("cac:PayeeParty")
    if payee_c is not None:
        payee: Data = {"name": payee_c.text("cac:PartyName/cbc:Name")}
        for ident in payee_c.findall("cac:PartyIdentification/cbc:ID"):
            if (ident.attr("schemeID") or "").upper() == "SEPA":
                creditor_id = ident.text()
            else:
                payee["identifier"] = _ident(ident)
        payee["legal_registration_id"] = _ident(payee_c.find("cac:PartyLegalEntity/cbc:CompanyID"))
        data["payee"] = _clean(payee)
    rep_c = doc.find("cac:TaxRepresentativeParty")
    if rep_c is not None:
        data["tax_representative"] = _clean({
            "name": rep_c.text("cac:PartyName/cbc:Name"),
            "vat_id": rep_c.text("cac:PartyTaxScheme/cbc:CompanyID"),
            "address": _address(rep_c.find("cac:PostalAddress")),
        })
        rep_c.find("cac:PartyTaxScheme/cac:TaxScheme/cbc:ID")

    delivery_c = doc.find("cac:Delivery")
    if delivery_c is not None:
        loc = delivery_c.find("cac:DeliveryLocation")
        data["delivery"] = _clean({
            "date": _date(delivery_c, "cbc:ActualDeliveryDate"),
            "location_id": _ident(loc.find("cbc:ID")) if loc else None,
            "address": _address(loc.find("cac:Address")) if loc else None,
            "party_name": delivery_c.text("cac:DeliveryParty/cac:PartyName/cbc:Name"),
        })

    means = doc.findall("cac:PaymentMeans")
    if means:
        data["payment"] = _payment(means, creditor_id, data)
    elif creditor_id:
        data["payment"] = {"means_code": None, "direct_debit": {"creditor_id": creditor_id}}

    allowances, charges = [], []
    for ac in doc.findall("cac:AllowanceCharge"):
        is_charge, item = _allowance_charge(ac, document_level=True)
        (charges if is_charge else allowances).append(item)
    data["allowances"], data["charges"] = allowances, charges

    breakdown = []
    vat_total = None
    vat_total_accounting = None
    for tt in doc.findall("cac:TaxTotal"):
        amount_c = tt.find("cbc:TaxAmount")
        currency = amount_c.attr("currencyID") if amount_c else None
        subtotals = tt.findall("cac:TaxSubtotal")
        if subtotals or currency == data["currency"] or (vat_total is None and not (
                data["vat_accounting_currency"])):
            vat_total = _dec(tt, "cbc:TaxAmount")
        else:
            vat_total_accounting = _dec(tt, "cbc:TaxAmount")
        for sub in subtotals:
            cat = sub.find("cac:TaxCategory")
            if cat is not None:
                cat.find("cac:TaxScheme/cbc:ID")
            breakdown.append(_clean({
                "taxable_amount": _dec(sub, "cbc:TaxableAmount"),
                "tax_amount": _dec(sub, "cbc:TaxAmount"),
                "category": cat.text("cbc:ID") if cat else None,
                "rate": _dec(cat, "cbc:Percent") if cat else None,
                "exemption_reason": cat.text("cbc:TaxExemptionReason") if cat else None,
                "exemption_reason_code": cat.text("cbc:TaxExemptionReasonCode") if cat else None,
            }))
    data["vat_breakdown"] = breakdown

    lmt = doc.find("cac:LegalMonetaryTotal")
    if lmt is not None:
        data["totals"] = _clean({
            "line_net_total": _dec(lmt, "cbc:LineExtensionAmount"),
            "allowances_total": _dec(lmt, "cbc:AllowanceTotalAmount"),
            "charges_total": _dec(lmt, "cbc:ChargeTotalAmount"),
            "total_without_vat": _dec(lmt, "cbc:TaxExclusiveAmount"),
            "vat_total": vat_total,
            "vat_total_accounting_currency": vat_total_accounting,
            "total_with_vat": _dec(lmt, "cbc:TaxInclusiveAmount"),
            "paid_amount": _dec(lmt, "cbc:PrepaidAmount"),
            "rounding_amount": _dec(lmt, "cbc:PayableRoundingAmount"),
            "amount_due": _dec(lmt, "cbc:PayableAmount"),
        })

    data["lines"] = [_line(c, credit)
                     for c in doc.findall("cac:CreditNoteLine" if credit else "cac:InvoiceLine")]
    return _clean(data)


# --------------------------------------------------------------------------- pieces


def _period(c: Cursor) -> Data | None:
    period = _clean({"start": _date(c, "cbc:StartDate"), "end": _date(c, "cbc:EndDate")})
    return period or None


def _address(c: Cursor | None) -> Data | None:
    if c is None:
        return None
    return _clean({
        "line1": c.text("cbc:StreetName"),
        "line2": c.text("cbc:AdditionalStreetName"),
        "line3": c.text("cac:AddressLine/cbc:Line"),
        "city": c.text("cbc:CityName"),
        "postal_code": c.text("cbc:PostalZone"),
        "subdivision": c.text("cbc:CountrySubentity"),
        "country": c.text("cac:Country/cbc:IdentificationCode"),
    })


def _party(c: Cursor) -> tuple[Data, str | None]:
    creditor_id = None
    identifiers = []
    for ident in c.findall("cac:PartyIdentification/cbc:ID"):
        if (ident.attr("schemeID") or "").upper() == "SEPA":
            creditor_id = ident.text()
        elif (value := _ident(ident)) is not None:
            identifiers.append(value)
    party: Data = {
        "name": c.text("cac:PartyLegalEntity/cbc:RegistrationName"),
        "trading_name": c.text("cac:PartyName/cbc:Name"),
        "identifiers": identifiers,
        "legal_registration_id": _ident(c.find("cac:PartyLegalEntity/cbc:CompanyID")),
        "address": _address(c.find("cac:PostalAddress")),
    }
    endpoint = c.find("cbc:EndpointID")
    if endpoint is not None and endpoint.text():
        party["electronic_address"] = _clean({"value": endpoint.text(),
                                              "scheme": endpoint.attr("schemeID")})
    for scheme in c.findall("cac:PartyTaxScheme"):
        kind = (scheme.text("cac:TaxScheme/cbc:ID") or "").upper()
        key = "vat_id" if kind == "VAT" else "tax_registration_id"
        party.setdefault(key, scheme.text("cbc:CompanyID"))
    party["additional_legal_information"] = c.text("cac:PartyLegalEntity/cbc:CompanyLegalForm")
    contact = c.find("cac:Contact")
    if contact is not None:
        party["contact"] = _clean({"name": contact.text("cbc:Name"),
                                   "telephone": contact.text("cbc:Telephone"),
                                   "email": contact.text("cbc:ElectronicMail")}) or None
    return _clean(party), creditor_id


def _supporting(ref: Cursor) -> Data:
    doc: Data = {"id": ref.text("cbc:ID"), "description": ref.text("cbc:DocumentDescription"),
                 "uri": ref.text("cac:Attachment/cac:ExternalReference/cbc:URI")}
    ref.text("cbc:DocumentTypeCode")
    blob = ref.find("cac:Attachment/cbc:EmbeddedDocumentBinaryObject")
    if blob is not None:
        try:
            content: Any = base64.b64decode(blob.el.text or "", validate=False)
        except (binascii.Error, ValueError):
            content = None
        doc["attachment"] = _clean({"content": content, "mime_code": blob.attr("mimeCode"),
                                    "filename": blob.attr("filename")})
    return _clean(doc)


def _payment(means: list[Cursor], creditor_id: str | None, data: Data) -> Data:
    first = means[0]
    code_c = first.find("cbc:PaymentMeansCode")
    payment: Data = {
        "means_code": code_c.text() if code_c else None,
        "means_text": code_c.attr("name") if code_c else None,
        "remittance_information": first.text("cbc:PaymentID"),
    }
    due = _date(first, "cbc:PaymentDueDate")
    if due is not None and not data.get("due_date"):
        data["due_date"] = due
    transfers = []
    for m in means:
        m.find("cbc:PaymentMeansCode")
        m.find("cbc:PaymentID")
        m.find("cbc:PaymentDueDate")
        account = m.find("cac:PayeeFinancialAccount")
        if account is not None:
            transfers.append(_clean({
                "account_id": account.text("cbc:ID"),
                "account_name": account.text("cbc:Name"),
                "bic": account.text("cac:FinancialInstitutionBranch/cbc:ID"),
            }))
    payment["credit_transfers"] = transfers
    card = first.find("cac:CardAccount")
    if card is not None:
        card.find("cbc:NetworkID")
        payment["card"] = _clean({"account_number": card.text("cbc:PrimaryAccountNumberID"),
                                  "holder_name": card.text("cbc:HolderName")})
    mandate = first.find("cac:PaymentMandate")
    if mandate is not None or creditor_id:
        payment["direct_debit"] = _clean({
            "mandate_reference": mandate.text("cbc:ID") if mandate else None,
            "debited_account": mandate.text("cac:PayerFinancialAccount/cbc:ID")
            if mandate else None,
            "creditor_id": creditor_id,
        })
    return _clean(payment)


def _allowance_charge(c: Cursor, *, document_level: bool) -> tuple[bool, Data]:
    is_charge = (c.text("cbc:ChargeIndicator") or "").lower() == "true"
    item: Data = {
        "amount": _dec(c, "cbc:Amount"),
        "base_amount": _dec(c, "cbc:BaseAmount"),
        "percentage": _dec(c, "cbc:MultiplierFactorNumeric"),
        "reason": c.text("cbc:AllowanceChargeReason"),
        "reason_code": c.text("cbc:AllowanceChargeReasonCode"),
    }
    if document_level:
        cat = c.find("cac:TaxCategory")
        if cat is not None:
            cat.find("cac:TaxScheme/cbc:ID")
            item["vat_category"] = cat.text("cbc:ID")
            item["vat_rate"] = _dec(cat, "cbc:Percent")
    return is_charge, _clean(item)


def _line(c: Cursor, credit: bool) -> Data:
    qty = c.find("cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity")
    line: Data = {
        "id": c.text("cbc:ID"),
        "note": c.text("cbc:Note"),
        "quantity": parse_decimal(qty.text() or "") if qty else None,
        "unit": qty.attr("unitCode") if qty else None,
        "net_amount": _dec(c, "cbc:LineExtensionAmount"),
        "accounting_reference": c.text("cbc:AccountingCost"),
        "order_line_reference": c.text("cac:OrderLineReference/cbc:LineID"),
    }
    period = c.find("cac:InvoicePeriod")
    if period is not None:
        line["period"] = _period(period)
    ref = c.find("cac:DocumentReference")
    if ref is not None:
        ref.text("cbc:DocumentTypeCode")
        line["object_id"] = _ident(ref.find("cbc:ID"))
    allowances, charges = [], []
    for ac in c.findall("cac:AllowanceCharge"):
        is_charge, item = _allowance_charge(ac, document_level=False)
        (charges if is_charge else allowances).append(item)
    line["allowances"], line["charges"] = allowances, charges

    it = c.find("cac:Item")
    if it is not None:
        item: Data = {
            "name": it.text("cbc:Name"),
            "description": it.text("cbc:Description"),
            "buyers_id": it.text("cac:BuyersItemIdentification/cbc:ID"),
            "sellers_id": it.text("cac:SellersItemIdentification/cbc:ID"),
            "standard_id": _ident(it.find("cac:StandardItemIdentification/cbc:ID")),
            "origin_country": it.text("cac:OriginCountry/cbc:IdentificationCode"),
            "classifications": [
                _clean({"value": cls.text(), "scheme": cls.attr("listID")})
                for cls in it.findall("cac:CommodityClassification/cbc:ItemClassificationCode")
                if cls.text()
            ],
            "attributes": [
                _clean({"name": p.text("cbc:Name"), "value": p.text("cbc:Value")})
                for p in it.findall("cac:AdditionalItemProperty")
            ],
        }
        line["item"] = _clean(item)
        cat = it.find("cac:ClassifiedTaxCategory")
        if cat is not None:
            cat.find("cac:TaxScheme/cbc:ID")
            line["vat"] = _clean({"category": cat.text("cbc:ID"),
                                  "rate": _dec(cat, "cbc:Percent")})
    pr = c.find("cac:Price")
    if pr is not None:
        base = pr.find("cbc:BaseQuantity")
        price: Data = {
            "net": _dec(pr, "cbc:PriceAmount"),
            "base_quantity": parse_decimal(base.text() or "") if base else None,
            "base_quantity_unit": base.attr("unitCode") if base else None,
        }
        if price["base_quantity_unit"] == line["unit"]:
            price["base_quantity_unit"] = None
        pac = pr.find("cac:AllowanceCharge")
        if pac is not None:
            pac.find("cbc:ChargeIndicator")
            discount = _dec(pac, "cbc:Amount")
            # The writer puts 0 when only a gross price is known (Amount is mandatory).
            price["discount"] = None if discount == 0 else discount
            price["gross"] = _dec(pac, "cbc:BaseAmount")
        line["price"] = _clean(price)
    return _clean(line)
