"""Monthly Peppol reports from the delivery records of a real A → B exchange, and the
access point's key handling."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
from typing import Any

import pytest
from lxml import etree

from gateway.core.dispatcher import Dispatcher
from gateway.core.model import Invoice
from gateway.errors import ConfigError
from plugins.peppol.identifiers import BIS_INVOICE
from plugins.peppol.pki import load_credentials
from plugins.peppol.reports import EUSR_NS, TSR_NS, monthly_reports
from plugins.peppol.settings import PeppolSettings
from plugins.peppol.store import PeppolStore
from tests.peppol.conftest import GATEWAY, business_invoice
from tests.peppol.test_peppol_e2e import erp_files, wait_for


def _text(root: etree._Element, path: str, ns: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path, {"r": ns})]


def test_reports_count_what_was_sent_and_received(two_gateways: dict[str, Any]) -> None:
    a, b_dir = two_gateways["a"], two_gateways["b_dir"]
    for number in ("E2611-00125", "E2611-00126"):
        data = business_invoice()
        data["number"] = number
        assert a.push(Invoice.model_validate(data), source="t").status == "accepted"
    assert Dispatcher(a).run().delivered == 2
    wait_for(lambda: len(erp_files(b_dir)) == 2)
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")

    a_store = PeppolStore(two_gateways["a_dir"] / "peppol.db")
    b_store = PeppolStore(b_dir / "peppol.db")
    try:
        sent = monthly_reports(a_store, month, reporter="PLV000001",
                               sent_deliveries=a.store.deliveries(statuses=["delivered"]))
        received = monthly_reports(b_store, month, reporter="PLV000002")
        earlier = monthly_reports(a_store, "2020-01", reporter="PLV000001")
    finally:
        a_store.close()
        b_store.close()

    tsr = etree.fromstring(sent["transaction-statistics"].xml)
    assert _text(tsr, "r:Total/r:Outgoing", TSR_NS) == ["2"]
    assert _text(tsr, "r:Total/r:Incoming", TSR_NS) == ["0"]
    assert _text(tsr, "r:Header/r:ReporterID", TSR_NS) == ["PLV000001"]
    (per_sp,) = tsr.iterfind("r:Subtotal[@type='PerSP-DT-PR']", {"r": TSR_NS})
    assert _text(per_sp, "r:Key", TSR_NS)[:2] == ["PLV000002", BIS_INVOICE]
    (per_cc,) = tsr.iterfind("r:Subtotal[@type='PerSP-DT-PR-CC']", {"r": TSR_NS})
    assert _text(per_cc, "r:Key", TSR_NS)[3:] == ["LV", "LV"]

    tsr_b = etree.fromstring(received["transaction-statistics"].xml)
    assert _text(tsr_b, "r:Total/r:Incoming", TSR_NS) == ["2"]
    eusr_b = etree.fromstring(received["end-user-statistics"].xml)
    assert _text(eusr_b, "r:FullSet/r:ReceivingEndUsers", EUSR_NS) == ["1"]
    assert _text(eusr_b, "r:FullSet/r:SendingEndUsers", EUSR_NS) == ["0"]
    eusr_a = etree.fromstring(sent["end-user-statistics"].xml)
    assert _text(eusr_a, "r:FullSet/r:SendingEndUsers", EUSR_NS) == ["1"]
    assert _text(eusr_a, "r:Subset[@type='PerEUC']/r:Key", EUSR_NS) == ["LV"]
    assert _text(etree.fromstring(earlier["transaction-statistics"].xml),
                 "r:Total/r:Outgoing", TSR_NS) == ["0"]

    # The same through the command line, on B's data directory.
    def gateway(*args: str) -> str:
        run = subprocess.run([GATEWAY, "--data-dir", str(b_dir), *args], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return run.stdout + run.stderr

    inbox = gateway("peppol", "inbox")
    assert inbox.count(" accepted ") == 2 and "from 9939:LV40003000001 (PLV000001)" in inbox
    out = b_dir.parent / "reports"
    printed = gateway("peppol", "report", month, "--out", str(out))
    assert "transaction-statistics: 2 received, 0 sent" in printed
    written = etree.parse(str(out / f"transaction-statistics-{month}.xml")).getroot()
    assert _text(written, "r:Total/r:Incoming", TSR_NS) == ["2"]
    assert (out / f"end-user-statistics-{month}.xml").exists()


def test_key_from_the_environment_is_never_shown(tmp_path: Any, pki: Any,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    ap = pki.access_point("PLV000001")
    monkeypatch.setenv("AP_CERT", ap.cert_pem.decode())
    monkeypatch.setenv("AP_KEY", ap.key_pem.decode())
    caplog.set_level(logging.DEBUG)
    creds = load_credentials(PeppolSettings(certificate_env="AP_CERT", key_env="AP_KEY"),
                             tmp_path)
    assert creds.seat_id == "PLV000001"
    secret = ap.key_pem.decode().splitlines()[1]
    assert secret not in repr(creds) and secret not in caplog.text
    other = pki.access_point("PLV000002")
    monkeypatch.setenv("AP_KEY", other.key_pem.decode())
    with pytest.raises(ConfigError, match="does not belong") as wrong:
        load_credentials(PeppolSettings(certificate_env="AP_CERT", key_env="AP_KEY"), tmp_path)
    assert secret not in str(wrong.value)
    monkeypatch.delenv("AP_KEY")
    with pytest.raises(ConfigError, match="AP_KEY"):
        load_credentials(PeppolSettings(certificate_env="AP_CERT", key_env="AP_KEY"), tmp_path)


def test_an_expired_ap_certificate_is_a_configuration_error(tmp_path: Any, pki: Any) -> None:
    cert, key = pki.access_point("PLV000008", expired=True).write(tmp_path, "ap")
    with pytest.raises(ConfigError, match="renew it"):
        load_credentials(PeppolSettings(certificate_file=str(cert), key_file=str(key)),
                         tmp_path)
