"""Faults against a real SMTP server: deferrals, refusals, a dropped connection, a
wrong password, an untrusted certificate, a crash between "250" and the outbox — and
every time, each recipient gets the invoice exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from email_smtp import (
    JANIS,
    PASSWORD,
    PASSWORD_ENV,
    deliver_all,
    email_customer,
    make_certificate,
    push,
)

from gateway.core.dispatcher import Dispatcher
from gateway.core.storage import DELIVERED, FAILED, RETRY

ILZE = "ilze.kalnina@example.lv"
GONE = "bijusais.gramatvedis@example.lv"
REFUSED = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


def _email_delivery(gw, invoice_id):
    return next(d for d in gw.store.deliveries(invoice_id=invoice_id) if d.label == "email")


def test_deferred_with_421_for_a_while_then_delivered_once(smtp, email_gateway,
                                                           invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw)
    invoice_id = push(gw, invoice_data)
    smtp.handler.data_replies = ["421 4.3.2 Service busy, try again later"] * 2

    for _ in range(2):
        assert deliver_all(gw).retrying == 1
        delivery = _email_delivery(gw, invoice_id)
        assert delivery.status == RETRY
        assert "421 4.3.2 Service busy" in (delivery.last_error or "")
        assert delivery.state.get("done", {}) == {}
    assert deliver_all(gw).delivered == 1

    assert len(smtp.received) == 1 and smtp.received[0].rcpt_tos == [JANIS]
    delivery = _email_delivery(gw, invoice_id)
    assert delivery.status == DELIVERED
    assert [a.outcome for a in gw.store.attempts(delivery.id)] == ["retry", "retry", "delivered"]
    # 421 means the server closes: each attempt came on a fresh connection
    assert smtp.connections == 3


def test_refused_with_550_applies_fallback_and_status_shows_it(smtp, email_gateway, run_cli,
                                                                invoice_data, tmp_path) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, fallback="folder")
    invoice_id = push(gw, invoice_data)
    smtp.handler.refuse[JANIS] = REFUSED.format(JANIS)

    summary = deliver_all(gw)

    assert (summary.failed, summary.delivered) == (1, 1)  # e-mail failed, fallback delivered
    assert smtp.received == []
    email_delivery, fallback = gw.store.deliveries(invoice_id=invoice_id)
    assert email_delivery.status == FAILED
    assert f"{JANIS}: 550 5.1.1" in (email_delivery.last_error or "")
    assert fallback.label == "folder" and fallback.status == DELIVERED
    assert (fallback.reason or "").startswith("email failed:")
    folder = tmp_path / "data" / "deliveries" / "100234567"
    assert sorted(p.name for p in folder.iterdir()) == ["E2611-00123.bin", "E2611-00123.json"]

    assert (email_delivery.last_error or "").startswith(f"SMTP 550 for {JANIS}: refused "
                                                        f"permanently by 127.0.0.1:{smtp.port}")
    story = run_cli("status", "E2611-00123")
    assert story.exit_code == 0, story.output
    assert "failed" in story.output and "SMTP 550" in story.output
    assert "fallback" in story.output
    failed = run_cli("status", "--failed", "--json")
    assert '"channel": "email", "status": "failed"' in failed.output


def test_refused_invoice_stays_available_in_the_portal(smtp, email_gateway, invoice_data,
                                                       monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,email,portal")
    gw = email_gateway(smtp)
    email_customer(gw, fallback="portal")
    invoice_id = push(gw, invoice_data)
    smtp.handler.refuse[JANIS] = REFUSED.format(JANIS)

    assert deliver_all(gw).delivered == 1

    email_delivery, portal = gw.store.deliveries(invoice_id=invoice_id)
    assert email_delivery.status == FAILED
    assert (portal.label, portal.status) == ("portal", DELIVERED)
    assert portal.receipt["detail"].startswith(
        "published for customer 100234567 (fallback: email failed: SMTP 550")
    kinds = [e.kind for e in gw.store.events(invoice_id)]
    assert kinds[-3:] == ["delivery-failed", "fallback", "delivered"]


def test_partial_refusal_is_recorded_per_recipient_and_never_resent(smtp, email_gateway,
                                                                     invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, to=(JANIS, GONE), fallback="folder")
    invoice_id = push(gw, invoice_data)
    smtp.handler.refuse[GONE] = REFUSED.format(GONE)

    deliver_all(gw)

    delivery = _email_delivery(gw, invoice_id)
    assert delivery.status == FAILED  # the fallback applies; the operator sees it
    assert list(delivery.state["done"]) == [JANIS]
    assert f"{JANIS}: accepted (250 2.0.0 OK queued as Q1)" in (delivery.last_error or "")
    assert f"{GONE}: 550 5.1.1" in (delivery.last_error or "")
    assert [d.label for d in gw.store.deliveries(invoice_id=invoice_id)] == ["email", "folder"]

    # the address works again; the operator retries: only the missing recipient gets it
    del smtp.handler.refuse[GONE]
    assert gw.store.requeue([delivery.id]) == 1
    assert deliver_all(gw).delivered == 1
    assert [r.rcpt_tos for r in smtp.received] == [[JANIS], [GONE]]
    assert _email_delivery(gw, invoice_id).receipt["recipients"] == {
        JANIS: "250 2.0.0 OK queued as Q1", GONE: "250 2.0.0 OK queued as Q2"}


def test_partial_refusal_may_count_as_delivered(smtp, email_gateway, invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, to=(JANIS, GONE), fallback="folder",
                   settings={"on_partial_refusal": "delivered"})
    invoice_id = push(gw, invoice_data)
    smtp.handler.refuse[GONE] = REFUSED.format(GONE)

    assert deliver_all(gw).delivered == 1

    deliveries = gw.store.deliveries(invoice_id=invoice_id)
    assert [d.label for d in deliveries] == ["email"]  # no fallback
    assert deliveries[0].receipt["recipients"] == {
        JANIS: "accepted (250 2.0.0 OK queued as Q1)", GONE: REFUSED.format(GONE)}


def test_one_recipient_deferred_gets_it_later_the_other_not_twice(smtp, email_gateway,
                                                                   invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, to=(JANIS, ILZE))
    invoice_id = push(gw, invoice_data)
    smtp.handler.refuse[ILZE] = "450 4.2.1 Mailbox busy"

    assert deliver_all(gw).retrying == 1
    assert "450 4.2.1 Mailbox busy" in (_email_delivery(gw, invoice_id).last_error or "")
    del smtp.handler.refuse[ILZE]
    assert deliver_all(gw).delivered == 1

    assert [r.rcpt_tos for r in smtp.received] == [[JANIS], [ILZE]]
    first, second = (r.message for r in smtp.received)
    assert first["Message-ID"] == second["Message-ID"]  # the same message, later
    assert first["To"] == second["To"] == f"{JANIS}, {ILZE}"


def test_connection_dropped_during_data_is_retried_and_delivered_once(smtp, email_gateway,
                                                                      invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw)
    invoice_id = push(gw, invoice_data)
    smtp.handler.drop_after_data = 1

    assert deliver_all(gw).retrying == 1
    delivery = _email_delivery(gw, invoice_id)
    assert "closed the connection during DATA" in (delivery.last_error or "")
    assert delivery.state.get("done", {}) == {}
    assert deliver_all(gw).delivered == 1

    assert len(smtp.received) == 1


def test_wrong_password_is_a_clear_error_and_nothing_is_marked_sent(smtp, email_gateway,
                                                                    invoice_data) -> None:
    smtp.password = "the-real-one"  # the gateway still has the old one
    gw = email_gateway(smtp)
    email_customer(gw)
    invoice_id = push(gw, invoice_data)

    assert deliver_all(gw).retrying == 1

    delivery = _email_delivery(gw, invoice_id)
    error = delivery.last_error or ""
    assert f"SMTP server 127.0.0.1:{smtp.port} refused the login of user 'gateway'" in error
    assert "535" in error and PASSWORD_ENV in error
    assert PASSWORD not in error
    assert delivery.state == {} and delivery.receipt_id is None
    assert smtp.received == []

    smtp.password = PASSWORD  # the operator fixes it: the outbox drains by itself
    assert deliver_all(gw).delivered == 1
    assert len(smtp.received) == 1


def test_missing_password_variable_names_it(smtp, email_gateway, invoice_data,
                                            monkeypatch) -> None:
    gw = email_gateway(smtp)
    monkeypatch.delenv(PASSWORD_ENV)
    email_customer(gw)
    invoice_id = push(gw, invoice_data)
    assert deliver_all(gw).retrying == 1
    assert f"environment variable {PASSWORD_ENV} (password_env) is not set" in (
        _email_delivery(gw, invoice_id).last_error or "")
    assert smtp.connections == 0


def test_sender_refused_is_for_the_operator_not_the_fallback(smtp, email_gateway,
                                                            invoice_data) -> None:
    gw = email_gateway(smtp)
    # no login, but the server requires one: it refuses MAIL FROM with 530
    email_customer(gw, fallback="folder", settings={"username": None, "password_env": None})
    invoice_id = push(gw, invoice_data)

    assert deliver_all(gw).retrying == 1

    deliveries = gw.store.deliveries(invoice_id=invoice_id)
    assert [d.label for d in deliveries] == ["email"]  # no fallback for our own mistake
    error = deliveries[0].last_error or ""
    assert "refused the sender rekini@daugavas-elektriba.lv (530 5.7.0" in error
    assert "check the from and username settings" in error
    assert smtp.received == []


def test_untrusted_certificate_is_refused(smtp, email_gateway, invoice_data,
                                          tmp_path) -> None:
    other = make_certificate(tmp_path / "other-ca")
    gw = email_gateway(smtp)
    email_customer(gw, settings={"ca_file": str(other.cert)})
    invoice_id = push(gw, invoice_data)
    assert deliver_all(gw).retrying == 1
    error = _email_delivery(gw, invoice_id).last_error or ""
    assert "certificate not trusted" in error and "ca_file" in error
    assert smtp.received == []


def test_server_without_starttls_gets_no_invoice(start_smtp, email_gateway,
                                                 invoice_data) -> None:
    plain = start_smtp("none", auth=False)
    gw = email_gateway(plain)
    email_customer(gw, settings={"security": "starttls"})
    invoice_id = push(gw, invoice_data)
    assert deliver_all(gw).retrying == 1
    assert "does not offer STARTTLS" in (_email_delivery(gw, invoice_id).last_error or "")
    assert plain.received == []


CRASHING_WORKER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from gateway.core.config import load_config
    from gateway.core.dispatcher import Dispatcher
    from gateway.core.pipeline import Gateway
    from gateway.core.storage import SQLiteStore

    class CrashingStore(SQLiteStore):
        def mark_delivered(self, *args, **kwargs):
            # the server said 250 and the channel recorded it; the process dies before
            # the outbox row says "delivered"
            os._exit(3)

    config = load_config(Path(sys.argv[1]))
    Dispatcher(Gateway(config, store=CrashingStore(config.data_dir / "gateway.db"))).run()
""")


def test_crash_after_acceptance_never_sends_twice(smtp, email_gateway, invoice_data,
                                                  tmp_path) -> None:
    gw = email_gateway(smtp, dispatcher="base_delay = 0\nlease_seconds = 1")
    email_customer(gw, to=(JANIS, ILZE), formats=("json",))
    invoice_id = push(gw, invoice_data)
    script = tmp_path / "crashing_worker.py"
    script.write_text(CRASHING_WORKER, encoding="utf-8")

    crashed = subprocess.run([sys.executable, str(script), str(tmp_path / "data")],
                             env={**os.environ, PASSWORD_ENV: PASSWORD}, cwd=Path.cwd(),
                             capture_output=True, text=True, timeout=120)

    assert crashed.returncode == 3, crashed.stderr
    assert len(smtp.received) == 1
    delivery = _email_delivery(gw, invoice_id)
    assert delivery.status == "delivering" and set(delivery.state["done"]) == {JANIS, ILZE}
    time.sleep(1.2)  # let the dead worker's lease run out, as in production

    summary = Dispatcher(gw).run()

    assert summary.delivered == 1
    assert len(smtp.received) == 1  # nobody got it twice
    assert smtp.connections == 1  # the rerun did not even connect
    delivery = _email_delivery(gw, invoice_id)
    assert delivery.status == DELIVERED
    assert delivery.receipt["recipients"] == {JANIS: "250 2.0.0 OK queued as Q1",
                                              ILZE: "250 2.0.0 OK queued as Q1"}
