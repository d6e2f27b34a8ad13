"""AS4 on the wire: build a signed and encrypted Peppol message with the ``as4`` package,
POST it, and check the signed receipt against what was signed (non-repudiation).

A built message is kept as an :class:`Outgoing` (exact bytes plus the ``as4`` exchange,
which the package serialises without the private key): a retry after a crash sends the
same bytes with the same MessageId, and the receipt — even the original one a receiver
returns for a duplicate — is checked against the references signed the first time.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from as4 import AS4LocalPrivateKey, AS4References, ReceiptVerificationError
from as4.peppol import (
    BusdoxDocidQnsDocumentIdentifier,
    PeppolAS4MessageBuilderArgs,
    PeppolAS4Profile,
    PeppolSendingExchange,
    create_peppol_external_party,
    create_peppol_internal_party,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from plugins.peppol.pki import Credentials

# MessageIds are uuid5 of the delivery's idempotency key in this namespace: the same
# delivery always sends the same MessageId, different gateways never collide by chance.
MESSAGE_ID_NAMESPACE = uuid.UUID("9c1b6a52-3f0e-5d8c-a7a4-2f6b7b0e4d19")
NOT_SERVICED = "PEPPOL:NOT_SERVICED"
MAX_SIGNAL_BYTES = 2 * 1024 * 1024


class SendFailed(Exception):
    """``refused``: the receiver answered with an ebMS error (it did not take the message);
    ``unsent``: the connection failed before any byte of the message left."""

    def __init__(self, message: str, *, retryable: bool, code: str | None = None,
                 refused: bool = False, unsent: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.refused = refused
        self.unsent = unsent


def message_id_for(idempotency_key: str) -> str:
    return f"{uuid.uuid5(MESSAGE_ID_NAMESPACE, idempotency_key)}@invoice-gateway"


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def local_party(credentials: Credentials) -> Any:
    return create_peppol_internal_party(credentials.seat_id, credentials.certificate,
                                        AS4LocalPrivateKey(credentials.key))


@dataclass(frozen=True)
class Outgoing:
    """One built AS4 message, as durable JSON: replayable byte for byte."""

    message_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    exchange: str  # the as4 exchange, serialised without the private key
    receiver_certificate: bytes  # DER

    def to_json(self) -> str:
        return json.dumps({"message_id": self.message_id, "url": self.url,
                           "headers": self.headers,
                           "body": base64.b64encode(self.body).decode(),
                           "exchange": self.exchange,
                           "receiver_certificate": base64.b64encode(
                               self.receiver_certificate).decode()})

    @classmethod
    def from_json(cls, text: str) -> Outgoing:
        data = json.loads(text)
        return cls(data["message_id"], data["url"], data["headers"],
                   base64.b64decode(data["body"]), data["exchange"],
                   base64.b64decode(data["receiver_certificate"]))


def sending_exchange(credentials: Credentials, receiver_certificate: x509.Certificate,
                     message_id: str, *, receiver_party_id: str | None = None) -> Any:
    """An ``as4`` sending exchange from our AP to the one holding ``receiver_certificate``
    (its party id is the certificate's CN, as Peppol issues them)."""
    remote = create_peppol_external_party(receiver_party_id or common_name(receiver_certificate),
                                          receiver_certificate)
    return PeppolSendingExchange(
        profile=PeppolAS4Profile, local_party=local_party(credentials), remote_party=remote,
        identifiers=AS4References(message_id=message_id,
                                  conversation_id=message_id.replace("@", "-conv@", 1)))


def builder_args(*, sender: str, receiver: str, document_type: str, process: str,
                 c1_country: str, instance_id: str) -> PeppolAS4MessageBuilderArgs:
    """The SBDH and message properties of one Peppol business message."""
    return PeppolAS4MessageBuilderArgs(
        sender=sender, recipient=receiver,
        document_type_identifier=BusdoxDocidQnsDocumentIdentifier.from_identifier_value(
            document_type),
        document_identification_instance_identifier=instance_id,
        process_identifier=process, c1_country_id=c1_country)


def build(payload: bytes, *, credentials: Credentials, url: str,
          receiver_certificate: x509.Certificate, sender: str, receiver: str,
          document_type: str, process: str, c1_country: str, message_id: str) -> Outgoing:
    """Wrap ``payload`` in the SBDH, sign, compress, encrypt for the receiver's AP."""
    exchange = sending_exchange(credentials, receiver_certificate, message_id)
    # The SBDH instance identifier follows the MessageId: stable across retries.
    headers, body = exchange.build(payload, builder_args(
        sender=sender, receiver=receiver, document_type=document_type, process=process,
        c1_country=c1_country, instance_id=message_id.split("@", 1)[0]))
    headers = {k: v for k, v in headers.items() if k.lower() != "user-agent"}
    headers["User-Agent"] = "invoice-gateway (as4)"
    return Outgoing(message_id, url, headers, body, exchange.model_dump_json(),
                    receiver_certificate.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class Acknowledged:
    receipt: bytes
    receipt_message_id: str


def post(outgoing: Outgoing, *, timeout: float, client: httpx.Client | None = None) -> bytes:
    """POST the message; the answer's bytes, or SendFailed (retryable for transport
    errors, 5xx without an ebMS signal, 429)."""
    own = client is None
    client = client or httpx.Client(timeout=timeout)
    try:
        with client.stream("POST", outgoing.url, content=outgoing.body,
                           headers=outgoing.headers) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_SIGNAL_BYTES:
                    raise SendFailed(f"{outgoing.url}: answer larger than {MAX_SIGNAL_BYTES} "
                                     "bytes", retryable=True)
                chunks.append(chunk)
            data = b"".join(chunks)
            status = response.status_code
    except httpx.HTTPError as exc:
        raise SendFailed(f"{outgoing.url}: {type(exc).__name__}: {exc}", retryable=True,
                         unsent=isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                         ) from None
    finally:
        if own:
            client.close()
    if b"SignalMessage" not in data:
        retry = status >= 500 or status in (408, 429)
        raise SendFailed(f"{outgoing.url} answered HTTP {status} without an AS4 signal",
                         retryable=retry or status < 400)
    return data


def verify_receipt(outgoing: Outgoing, signal: bytes, credentials: Credentials) -> Acknowledged:
    """Accept only a receipt signed by the receiver's certificate, for this MessageId,
    acknowledging every reference that was signed. An ebMS error becomes SendFailed:
    permanent (the receiver refuses these very bytes)."""
    exchange = PeppolSendingExchange.restore(outgoing.exchange, local_party(credentials))
    try:
        exchange.receive_signal(signal)
    except ReceiptVerificationError as exc:
        # Not proof of delivery; the message may or may not have arrived. Sending the
        # same bytes again is harmless (the receiver answers a duplicate with its receipt).
        raise SendFailed(f"receipt not accepted: {exc}", retryable=True) from None
    error = exchange.error
    if error is not None:
        detail = error.error_detail.value if error.error_detail else ""
        described = error.description.value if error.description else ""
        code = NOT_SERVICED if detail == NOT_SERVICED else error.error_code
        raise SendFailed(f"{error.error_code} {error.short_description or ''}: "
                         f"{detail or described}".strip(), retryable=False, code=code,
                         refused=True)
    receipt = exchange.receipt
    envelope = receipt.soap_envelope if receipt else None
    signal_info = envelope.header.messaging.signal_message.message_info \
        if envelope and envelope.header.messaging.signal_message else None
    return Acknowledged(signal, signal_info.message_id.value if signal_info else "")
