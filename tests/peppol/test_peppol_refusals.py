"""What B answers to a replay, a tampered message, a wrong or expired certificate, and
what A does with an unknown, unserviced or unreachable participant: the right answer,
and nothing lost or delivered twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gateway import complete
from gateway.core.dispatcher import Dispatcher
from gateway.core.model import Invoice
from plugins.peppol.identifiers import BILLING_PROCESS, BIS_INVOICE
from plugins.peppol.pki import Credentials
from plugins.peppol.store import PeppolStore
from plugins.peppol.testkit import Issued
from plugins.peppol.transport import (
    NOT_SERVICED,
    Outgoing,
    SendFailed,
    build,
    message_id_for,
    post,
    verify_receipt,
)
from tests.peppol.conftest import BUYER, SELLER, business_invoice
from tests.peppol.network import free_port
from tests.peppol.test_peppol_e2e import erp_files, wait_for


def _inbox(b_dir: Path) -> list[Any]:
    store = PeppolStore(b_dir / "peppol.db")
    try:
        return store.inbox()
    finally:
        store.close()


def _sent(two: dict[str, Any]) -> tuple[Outgoing, bytes]:
    """Send one invoice A → B through the dispatcher; A's stored message and receipt."""
    a = two["a"]
    result = a.push(Invoice.model_validate(business_invoice()), source="test")
    assert Dispatcher(a).run().delivered == 1
    (delivery,) = a.store.deliveries(invoice_id=result.invoice_id)
    message_id = delivery.receipt_id.removeprefix("peppol:")
    path = two["a_dir"] / "peppol" / "outbox" / f"{message_id.split('@')[0]}.json"
    outgoing = Outgoing.from_json(path.read_text())
    digest = delivery.receipt["recipients"][BUYER].removeprefix("receipt sha256:")
    return outgoing, (two["a_dir"] / "peppol" / "receipts" / f"{digest}.xml").read_bytes()


def _message(two: dict[str, Any], ap: Issued, key: str,
             edit: Any = None) -> tuple[Outgoing, Credentials]:
    credentials = Credentials(ap.certificate, ap.key)
    invoice = complete(Invoice.model_validate(business_invoice()))
    ubl = two["a"].render(invoice, "ubl", validate=False).content
    if edit is not None:
        ubl = edit(ubl)
    outgoing = build(ubl, credentials=credentials, url=two["url"],
                     receiver_certificate=two["network"].pki.access_point(
                         "PLV000002").certificate,
                     sender=SELLER, receiver=BUYER, document_type=BIS_INVOICE,
                     process=BILLING_PROCESS, c1_country="LV",
                     message_id=message_id_for(key))
    return outgoing, credentials


def test_replay_gets_the_original_receipt_and_no_second_delivery(
        two_gateways: dict[str, Any]) -> None:
    outgoing, receipt = _sent(two_gateways)
    wait_for(lambda: erp_files(two_gateways["b_dir"]))
    answer = post(outgoing, timeout=10)
    assert answer == receipt  # the very receipt B gave the first time
    pki = two_gateways["network"].pki
    ap = pki.access_point("PLV000001")
    verify_receipt(outgoing, answer, Credentials(ap.certificate, ap.key))
    time.sleep(1)  # give B's worker the chance to do something wrong
    assert len(erp_files(two_gateways["b_dir"])) == 1
    assert len(_inbox(two_gateways["b_dir"])) == 1


def test_tampered_message_is_refused(two_gateways: dict[str, Any]) -> None:
    ap = two_gateways["network"].pki.access_point("PLV000001")
    outgoing, credentials = _message(two_gateways, ap, "tampered")
    assert b"-conv@" in outgoing.body
    forged = Outgoing(outgoing.message_id, outgoing.url, outgoing.headers,
                      outgoing.body.replace(b"-conv@", b"-cONv@", 1), outgoing.exchange,
                      outgoing.receiver_certificate)
    signal = post(forged, timeout=10)
    with pytest.raises(SendFailed) as failed:
        verify_receipt(forged, signal, credentials)
    assert not failed.value.retryable and "EBMS:0101" in str(failed.value)
    assert _inbox(two_gateways["b_dir"]) == []
    # The genuine message still goes through afterwards: nothing was burnt.
    verify_receipt(outgoing, post(outgoing, timeout=10), credentials)
    assert len(_inbox(two_gateways["b_dir"])) == 1


@pytest.mark.parametrize("which", ["wrong", "expired"])
def test_untrusted_sender_certificate_is_refused(two_gateways: dict[str, Any],
                                                 which: str) -> None:
    pki = two_gateways["network"].pki
    ap = pki.rogue_access_point("PLV000001") if which == "wrong" else \
        pki.access_point("PLV000009", expired=True)
    outgoing, credentials = _message(two_gateways, ap, which)
    signal = post(outgoing, timeout=10)
    with pytest.raises(SendFailed) as failed:
        verify_receipt(outgoing, signal, credentials)
    assert not failed.value.retryable and "EBMS:0101" in str(failed.value)
    assert _inbox(two_gateways["b_dir"]) == []


def _customer_for(two: dict[str, Any], participant: str) -> str:
    from tests.peppol.conftest import add_customer

    add_customer(two["a"], id="other", name="Other SIA", formats=["ubl"], match=["OTHER-1"],
                 channels=[{"channel": "peppol", "fallback": "folder",
                            "settings": {"participant": participant}}])
    data = business_invoice()
    data["number"] = f"E-{participant}"
    data["buyer"]["identifiers"] = [{"value": "OTHER-1"}]
    result = two["a"].push(Invoice.model_validate(data), source="test", customer_id="other")
    assert result.status == "accepted", result.error
    Dispatcher(two["a"]).run()
    return result.invoice_id


def test_unknown_participant_fails_permanently_and_the_fallback_delivers(
        two_gateways: dict[str, Any]) -> None:
    invoice_id = _customer_for(two_gateways, "0218:00000000000")
    deliveries = {d.label: d for d in two_gateways["a"].store.deliveries(invoice_id=invoice_id)}
    assert deliveries["peppol"].status == "failed"
    assert "not registered in the SML" in deliveries["peppol"].last_error
    assert deliveries["folder"].status == "delivered"
    assert deliveries["folder"].fallback_for == deliveries["peppol"].id


def test_not_serviced_participant_fails_permanently(two_gateways: dict[str, Any]) -> None:
    net = two_gateways["network"]
    # Registered in the network at B, but B has no customer for it.
    net.register("0218:11111111111", two_gateways["url"],
                 net.pki.access_point("PLV000002").certificate)
    invoice_id = _customer_for(two_gateways, "0218:11111111111")
    deliveries = {d.label: d for d in two_gateways["a"].store.deliveries(invoice_id=invoice_id)}
    assert deliveries["peppol"].status == "failed"
    assert NOT_SERVICED in deliveries["peppol"].last_error
    assert deliveries["folder"].status == "delivered"
    assert _inbox(two_gateways["b_dir"]) == []


def test_unreachable_endpoint_is_retried_and_looked_up_again(
        two_gateways: dict[str, Any]) -> None:
    """Connection refused: nothing left, so the next attempt asks the SMP again (the
    participant may have moved) and sends under the same MessageId."""
    net, a = two_gateways["network"], two_gateways["a"]
    dead = f"http://127.0.0.1:{free_port()}/as4"
    b_cert = net.pki.access_point("PLV000002").certificate
    net.register("0218:22222222222", dead, b_cert)
    invoice_id = _customer_for(two_gateways, "0218:22222222222")
    (delivery,) = a.store.deliveries(invoice_id=invoice_id)
    assert delivery.status == "retry" and "ConnectError" in delivery.last_error
    message_id = delivery.state["message_id"]
    assert message_id == message_id_for(delivery.idempotency_key)
    assert not (two_gateways["a_dir"] / "peppol" / "outbox"
                / f"{message_id.split('@')[0]}.json").exists()
    # The participant moves to B; B serves it now. The retry finds B.
    from tests.peppol.conftest import add_customer as add_b_customer

    b = net.gateway(two_gateways["b_dir"])
    add_b_customer(b, id="other", name="Other SIA", formats=["ubl"],
                   match=["0218:22222222222"], channels=[{"channel": "folder"}])
    b.close()
    net.register("0218:22222222222", two_gateways["url"], b_cert)
    a.store.requeue([delivery.id])
    Dispatcher(a).run(delivery_id=delivery.id)
    done = a.store.get_delivery(delivery.id)
    assert done.status == "delivered" and done.receipt_id == f"peppol:{message_id}"


def test_a_cached_endpoint_is_reused_and_forgotten_when_it_refuses(
        two_gateways: dict[str, Any]) -> None:
    net, a = two_gateways["network"], two_gateways["a"]
    for number in ("C-1", "C-2"):
        data = business_invoice()
        data["number"] = number
        assert a.push(Invoice.model_validate(data), source="t").status == "accepted"
    smp_requests = len(net.smp.requests)
    assert Dispatcher(a).run().delivered == 2
    assert len(net.smp.requests) == smp_requests + 1  # the second invoice used the cache
    # B stops serving the participant; the cached endpoint now refuses.
    b = net.gateway(two_gateways["b_dir"])
    customer = b.store.get_customer("ceptuve").model_copy(update={"match": ["nobody"]})
    b.store.put_customer(customer, actor="test")
    b.close()
    data = business_invoice()
    data["number"] = "C-3"
    invoice_id = a.push(Invoice.model_validate(data), source="t").invoice_id
    Dispatcher(a).run()
    (first,) = [d for d in a.store.deliveries(invoice_id=invoice_id) if d.label == "peppol"]
    assert first.status == "retry" and NOT_SERVICED in first.last_error  # ask again
    a.store.requeue([first.id])
    Dispatcher(a).run(delivery_id=first.id)
    again = a.store.get_delivery(first.id)
    assert again.status == "failed" and NOT_SERVICED in again.last_error  # fresh answer
    assert len(net.smp.requests) == smp_requests + 2


def test_5xx_without_a_signal_is_retried(two_gateways: dict[str, Any]) -> None:
    """An endpoint that answers 501 (here: the SMP's HTTP server, which has no POST) is
    an access point having trouble: retried later, nothing given up."""
    net = two_gateways["network"]
    net.register("0218:33333333333", f"{net.smp.url}/as4",
                 net.pki.access_point("PLV000002").certificate)
    invoice_id = _customer_for(two_gateways, "0218:33333333333")
    (delivery,) = two_gateways["a"].store.deliveries(invoice_id=invoice_id)
    assert delivery.status == "retry"
    assert "HTTP 501 without an AS4 signal" in delivery.last_error


def test_oversized_message_is_refused_before_parsing(network: Any) -> None:
    from tests.peppol.conftest import make_pair

    pair = make_pair(network, max_message_bytes=2048)  # a real message is larger
    try:
        ap = network.pki.access_point("PLV000001")
        outgoing, _ = _message(pair, ap, "big")
        with pytest.raises(SendFailed) as failed:
            post(outgoing, timeout=10)
        assert "HTTP 413" in str(failed.value) and not failed.value.retryable
        assert _inbox(pair["b_dir"]) == []
    finally:
        pair["a"].close()


def test_message_addressed_to_another_access_point_is_refused(
        two_gateways: dict[str, Any]) -> None:
    from plugins.peppol.transport import builder_args, sending_exchange

    pki = two_gateways["network"].pki
    a, b = pki.access_point("PLV000001"), pki.access_point("PLV000002")
    # B's certificate (so B can decrypt it) but another access point's party id
    exchange = sending_exchange(Credentials(a.certificate, a.key), b.certificate,
                                "misaddressed@test", receiver_party_id="PLV000099")
    ubl = two_gateways["a"].render(complete(Invoice.model_validate(business_invoice())),
                                   "ubl", validate=False).content
    headers, body = exchange.build(ubl, builder_args(
        sender=SELLER, receiver=BUYER, document_type=BIS_INVOICE, process=BILLING_PROCESS,
        c1_country="LV", instance_id="x"))
    outgoing = Outgoing("misaddressed@test", two_gateways["url"], headers, body,
                        exchange.model_dump_json(), b"")
    with pytest.raises(SendFailed) as failed:
        verify_receipt(outgoing, post(outgoing, timeout=10), Credentials(a.certificate, a.key))
    assert "PLV000099" in str(failed.value) and not failed.value.retryable
    assert _inbox(two_gateways["b_dir"]) == []


def test_concurrent_copies_of_one_message_are_stored_once(
        two_gateways: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ap = two_gateways["network"].pki.access_point("PLV000001")
    outgoing, credentials = _message(two_gateways, ap, "concurrent")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(outgoing, timeout=30), range(4)))
    assert len(set(answers)) == 1  # every copy gets the one receipt that was stored
    verify_receipt(outgoing, answers[0], credentials)
    wait_for(lambda: erp_files(two_gateways["b_dir"]))
    time.sleep(1)
    assert len(_inbox(two_gateways["b_dir"])) == 1
    assert len(erp_files(two_gateways["b_dir"])) == 1
