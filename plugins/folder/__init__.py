"""The folder channel: writes each bundle into a per-customer directory, atomically.

The reference delivery channel: an ERP or a print shop that watches a directory gets
each invoice's documents there, never a half-written file (temporary name, then rename).
A repeated delivery of the same bundle finds identical files and succeeds without
writing; a different file already under the same name is a permanent failure rather
than an overwrite.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gateway import Bundle, DeliveryError, DeliveryState, Receipt, atomic_write, hookimpl


class FolderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        "deliveries/{customer}",
        description="Target directory; relative paths are inside the data directory. "
        "{customer} is replaced by the customer id.",
    )
    subdirectory_per_invoice: bool = Field(
        False, description="Put each invoice's files into a directory named after it"
    )


class FolderChannel:
    name: ClassVar[str] = "folder"
    description: ClassVar[str] = "Write documents into a directory (atomic rename)"
    Settings: ClassVar[type[BaseModel]] = FolderSettings

    def __init__(self) -> None:
        self.data_dir = Path(".")

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def target_dir(self, bundle: Bundle, settings: FolderSettings) -> Path:
        directory = Path(settings.path.replace("{customer}", bundle.customer_id))
        if not directory.is_absolute():
            directory = self.data_dir / directory
        if settings.subdirectory_per_invoice:
            stem = bundle.documents[0].filename.rsplit(".", 1)[0] if bundle.documents else "x"
            directory = directory / stem
        return directory

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        directory = self.target_dir(bundle, settings)
        written = {}
        for doc in bundle.documents:
            path = directory / doc.filename
            try:
                if path.exists():
                    existing = hashlib.sha256(path.read_bytes()).hexdigest()
                    if existing != doc.sha256:
                        raise DeliveryError(
                            f"{path} already exists with other content; not overwritten",
                            retryable=False)
                else:
                    atomic_write(path, doc.content)
            except OSError as exc:
                # A full or unwritable target may be fixed by an operator: retry later.
                raise DeliveryError(f"cannot write {path}: {exc.strerror}",
                                    retryable=True) from None
            written[str(path)] = doc.sha256
        receipt_id = hashlib.sha256(
            (bundle.idempotency_key + "".join(sorted(written.values()))).encode()
        ).hexdigest()[:32]
        return Receipt(id=f"folder:{receipt_id}", detail=str(directory), recipients=written)


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register(FolderChannel())
