"""The gateway core: model, rules, storage and pipeline. Knows nothing about any plugin."""

from gateway.core.archive import Archive
from gateway.core.calc import line_net_amount, money
from gateway.core.config import Config, load_config
from gateway.core.customers import ChannelPreference, Customer
from gateway.core.dispatcher import Dispatcher, DispatchSummary
from gateway.core.documents import (
    Bundle,
    DeliveryState,
    Document,
    Receipt,
    RenderContext,
    RetryPolicy,
    safe_filename,
)
from gateway.core.fsutil import atomic_write
from gateway.core.model import (
    Address,
    AllowanceCharge,
    Attachment,
    Contact,
    CreditTransfer,
    Delivery,
    DirectDebit,
    ElectronicAddress,
    Identifier,
    Invoice,
    InvoiceLine,
    InvoiceTypeCode,
    Item,
    ItemAttribute,
    LineVat,
    Note,
    Party,
    Payee,
    PaymentCard,
    PaymentInstructions,
    Period,
    PrecedingInvoice,
    Price,
    SupportingDocument,
    TaxRepresentative,
    Totals,
    VatBreakdown,
    VatCategory,
)
from gateway.core.pipeline import Gateway, PushResult
from gateway.core.secrets import secret_from_env
from gateway.core.storage import SQLiteStore, Store
from gateway.core.validation import (
    complete,
    findings_from_validation_error,
    first_error,
    load_invoice,
)

__all__ = [
    "Address", "AllowanceCharge", "Archive", "Attachment", "Bundle", "ChannelPreference",
    "Config", "Contact", "CreditTransfer", "Customer", "Delivery", "DeliveryState",
    "DirectDebit", "DispatchSummary", "Dispatcher", "Document", "ElectronicAddress", "Gateway",
    "Identifier", "Invoice", "InvoiceLine", "InvoiceTypeCode", "Item", "ItemAttribute",
    "LineVat", "Note", "Party", "Payee", "PaymentCard", "PaymentInstructions", "Period",
    "PrecedingInvoice", "Price", "PushResult", "Receipt", "RenderContext", "RetryPolicy",
    "SQLiteStore",
    "Store", "SupportingDocument", "TaxRepresentative", "Totals", "VatBreakdown", "VatCategory",
    "atomic_write", "complete", "findings_from_validation_error", "first_error",
    "line_net_amount",
    "load_config", "load_invoice", "money", "safe_filename", "secret_from_env",
]
