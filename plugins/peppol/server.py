"""``gateway serve peppol``: the receiving AS4 endpoint (ASGI; run under uvicorn, with
TLS terminated in front of it as access points do).

For each POST: verify the signature and the sender's certificate chain (``as4``),
decrypt, refuse participants this gateway does not serve (``PEPPOL:NOT_SERVICED``),
answer a MessageId seen before with the receipt sent the first time, and otherwise store
the message durably (payload file fsynced, then its row committed) *before* answering
with a signed receipt. A worker thread then pushes each stored message through the
pipeline and delivers it to the customer by its own channels.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from as4 import BaseProfileLevelException, ParticipantNotServicedError
from as4.peppol import PeppolAS4Profile, parse_peppol_message
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway import atomic_write
from plugins.peppol.access_point import AccessPoint
from plugins.peppol.identifiers import IdentifierError, ParticipantId
from plugins.peppol.incoming import open_sbd, process_one, process_pending
from plugins.peppol.store import InboxRecord
from plugins.peppol.transport import common_name, local_party

log = logging.getLogger("gateway.peppol.server")
SIGNAL_TYPE = "application/soap+xml;charset=utf-8"


class Misaddressed(BaseProfileLevelException):
    """EBMS:0004: the message's PartyInfo/To is not this access point."""

    description = "The message is addressed to another access point"


class Receiver:
    """The AS4 receiving logic, independent of the web framework."""

    def __init__(self, gw: Any, ap: AccessPoint) -> None:
        self.gw, self.ap = gw, ap
        self.party = local_party(ap.credentials)
        self.policy = ap.security_policy()

    def customer_for(self, participant: str) -> str | None:
        try:
            pid = ParticipantId.parse(participant)
        except IdentifierError:
            return None
        customer = self.gw.store.find_customer({str(pid), pid.uri, pid.key})
        return customer.id if customer else None

    def _accept(self, participant: str) -> None:
        if self.customer_for(participant) is None:
            raise ParticipantNotServicedError(participant)

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[bytes, str | None]:
        """The signal to answer with, and the MessageId newly stored (None otherwise)."""
        exchange = parse_peppol_message(headers, body, self.party,
                                        accept_participant=self._accept,
                                        security_policy=self.policy)
        message = exchange.message
        _, signal = exchange.build_signal()
        if not exchange.successful:
            error = message.parse_error if message else None
            log.warning("AS4 message refused", extra={
                "message_id": getattr(message, "message_id", ""),
                "error": f"{getattr(error, 'error_code', '')} {error}"})
            return signal, None
        addressed = message.addressed_to.party_id if message.addressed_to else ""
        if addressed != self.ap.credentials.seat_id:
            # Encrypted for our key yet addressed to another access point: the sender's
            # SMP data and its message disagree; refuse rather than guess (the as4
            # package leaves this check to the caller).
            return self._refuse(message, f"PartyInfo/To names {addressed!r}, not this "
                                         f"access point ({self.ap.credentials.seat_id})"), None
        earlier = self.ap.store.received(message.message_id)
        if earlier is not None:
            log.info("AS4 duplicate answered with its original receipt",
                     extra={"message_id": message.message_id})
            return earlier.receipt, None
        payload = next(iter(message.decrypted_data.values()))
        envelope = open_sbd(payload)
        digest = hashlib.sha256(payload).hexdigest()
        relative = f"inbox/{digest[:2]}/{digest}.xml"
        target = self.ap.directory / relative
        if not target.exists():
            atomic_write(target, payload)
        record = InboxRecord(
            message_id=message.message_id, received_at=time.time(), sender=message.sender or "",
            receiver=message.recipient or "", document_type=message.document_type_identifier_value
            or "", process=message.process_identifier or "", c1_country=envelope.c1_country,
            instance_id=envelope.instance_id,
            sending_ap=common_name(message.signer_certificate),
            payload_sha256=digest, payload_path=relative, receipt=signal,
            customer_id=self.customer_for(message.recipient or ""), status="stored",
            invoice_id=None, findings=None, error=None, processed_at=None)
        stored = self.ap.store.store_received(record)
        if stored.receipt != signal:  # a concurrent copy of the same message won the race
            return stored.receipt, None
        log.info("AS4 message stored", extra={"message_id": message.message_id,
                                               "sender": record.sender,
                                               "receiver": record.receiver})
        return signal, message.message_id

    def _refuse(self, message: Any, detail: str) -> bytes:
        log.warning("AS4 message refused", extra={"message_id": message.message_id,
                                                   "error": detail})
        error = Misaddressed(detail=detail)
        signal = PeppolAS4Profile.receipt_class().create_error_signal_from_exception(
            exception=error, local_party=self.party, referenced_message_id=message.message_id,
            referenced_messaging_id=message.messaging_id)
        return signal.get_request_data()[1]


class Processor:
    """One thread that pushes stored messages through the pipeline and delivers them."""

    def __init__(self, make_gateway: Callable[[], Any], ap: AccessPoint, *,
                 deliver: bool = True) -> None:
        self.make_gateway, self.ap, self.deliver = make_gateway, ap, deliver
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="peppol-inbox", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=60)

    def _run(self) -> None:
        from gateway.core.dispatcher import Dispatcher

        gw = self.make_gateway()
        try:
            process_pending(gw, self.ap)  # whatever a crash left stored but unprocessed
            if self.deliver:
                Dispatcher(gw).run()
            while (message_id := self.queue.get()) is not None:
                try:
                    if process_one(gw, self.ap, message_id) == "accepted" and self.deliver:
                        Dispatcher(gw).run()
                except Exception:  # keep serving; the message stays 'stored' for a rerun
                    log.exception("processing %s failed", message_id)
        finally:
            gw.close()


def create_app(gw: Any, ap: AccessPoint, *, processor: Processor | None = None) -> Starlette:
    receiver = Receiver(gw, ap)
    limit = ap.settings.max_message_bytes
    # Bounded memory: at most this many messages are in memory (read, verified) at once.
    slots = asyncio.Semaphore(ap.settings.receive_concurrency)

    async def as4(request: Request) -> Response:
        async with slots:
            return await _as4(request)

    async def _as4(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return PlainTextResponse(f"message larger than {limit} bytes", status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return PlainTextResponse(f"message larger than {limit} bytes", status_code=413)
            chunks.append(chunk)
        headers = {"Content-Type": request.headers.get("content-type", "")}
        try:
            signal, stored = await run_in_threadpool(receiver.handle, headers, b"".join(chunks))
        except Exception as exc:
            # Nothing was stored and no receipt given: the sender retries.
            log.exception("AS4 message could not be handled: %s: %s", type(exc).__name__, exc)
            return PlainTextResponse("internal error; try again", status_code=503)
        if stored and processor is not None:
            processor.queue.put(stored)
        return Response(signal, media_type=SIGNAL_TYPE)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/as4", as4, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])
