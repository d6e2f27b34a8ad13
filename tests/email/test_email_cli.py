"""``gateway email check`` against the real test server."""

from __future__ import annotations

from email_smtp import JANIS, USER, email_customer, push


def test_check_connects_and_logs_in_without_sending(smtp, email_gateway, run_cli) -> None:
    email_gateway(smtp)
    result = run_cli("email", "check")
    assert result.exit_code == 0, result.output
    assert f"127.0.0.1:{smtp.port}: connected, TLSv1." in result.output
    assert f"(starttls), logged in as '{USER}'" in result.output
    assert smtp.received == [] and smtp.connections == 1


def test_check_can_send_a_test_message(smtp, email_gateway, run_cli) -> None:
    email_gateway(smtp)
    result = run_cli("email", "check", "--send-to", JANIS)
    assert result.exit_code == 0, result.output
    assert f"test message to {JANIS}: 250 2.0.0 OK queued as Q1" in result.output
    msg = smtp.received[0].message
    assert msg["Subject"] == "Rēķinu vārteja: testa ziņojums / test message"
    assert "SMTP iestatījumi darbojas" in msg.get_body(("plain",)).get_content()


def test_check_with_a_customers_settings_and_a_wrong_password(smtp, email_gateway,
                                                              run_cli) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, settings={"port": 9})  # the customer's override: nothing listens
    result = run_cli("email", "check", "--customer", "100234567")
    assert result.exit_code == 1
    assert "cannot connect to SMTP server 127.0.0.1:9" in result.output
    assert "Traceback" not in result.output

    smtp.password = "changed"
    result = run_cli("email", "check")
    assert result.exit_code == 1
    assert "refused the login of user 'gateway' (535" in result.output


def test_gateway_deliver_sends_with_the_password_from_the_environment(
        smtp, email_gateway, run_cli, invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw)
    push(gw, invoice_data)
    result = run_cli("deliver")
    assert result.exit_code == 0, result.output
    assert "1 delivered" in result.output
    assert [r.rcpt_tos for r in smtp.received] == [[JANIS]]
    assert run_cli("deliver").output.startswith("0 delivered")  # nothing twice
    assert len(smtp.received) == 1
