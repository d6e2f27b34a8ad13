"""Invoice gateway: EN 16931 invoices in, every format and channel a customer wants out.

The public API for plugin authors: ``hookimpl`` to mark hook implementations, the
model classes, and the value types that cross the plugin boundary.
"""

from gateway.core import (
    Bundle,
    Customer,
    DeliveryState,
    Document,
    Invoice,
    Receipt,
    RenderContext,
    RetryPolicy,
    atomic_write,
    complete,
    first_error,
    load_invoice,
    safe_filename,
    secret_from_env,
)
from gateway.errors import (
    ConfigError,
    DeliveryError,
    Finding,
    GatewayError,
    InputError,
    InvoiceRejected,
    PluginError,
)
from gateway.hookspecs import Channel, Format, Source, hookimpl

__version__ = "0.1.0"

__all__ = [
    "Bundle", "Channel", "ConfigError", "Customer", "DeliveryError", "DeliveryState",
    "Document", "Finding", "Format", "GatewayError", "InputError", "Invoice", "InvoiceRejected",
    "PluginError",
    "Receipt", "RenderContext", "RetryPolicy", "Source", "__version__", "atomic_write",
    "complete", "first_error", "hookimpl", "load_invoice", "safe_filename", "secret_from_env",
]
