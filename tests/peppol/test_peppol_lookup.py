"""SML and SMP lookup against dnsmasq and an HTTP SMP on 127.0.0.1, and the
``gateway peppol lookup`` command."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner

from gateway.plugins import get_plugin_manager
from plugins.peppol.identifiers import (
    BILLING_PROCESS,
    BIS_CREDIT_NOTE,
    BIS_INVOICE,
    IdentifierError,
    ParticipantId,
)
from plugins.peppol.lookup import lookup
from plugins.peppol.pki import Trust
from plugins.peppol.settings import PeppolSettings
from plugins.peppol.sml import NotRegistered, _u_naptr_url, dns_name
from plugins.peppol.smp import BadMetadata
from plugins.peppol.testkit import TestPKI, issue, service_metadata, sign_metadata
from tests.peppol.conftest import ZONE, Network

PID = "0218:40003009497"


def settings(net: Network) -> PeppolSettings:
    return PeppolSettings(network="private", sml_zone=ZONE, dns_server=net.dnsmasq.server,
                          allow_http=True, timeout=5,
                          **{k: str(v) for k, v in net.trust.items()})


def test_dns_name_is_base32_sha256_of_the_lowercased_identifier() -> None:
    pid = ParticipantId.parse("iso6523-actorid-upis::9939:LV40103987654")
    digest = hashlib.sha256(b"9939:lv40103987654").digest()
    label = base64.b32encode(digest).decode().rstrip("=")
    assert dns_name(pid, "acc.edelivery.tech.ec.europa.eu.") == \
        f"{label}.iso6523-actorid-upis.acc.edelivery.tech.ec.europa.eu"
    assert "=" not in label and len(label) == 52
    assert dns_name(ParticipantId.parse("9939:lv40103987654"), "z") == dns_name(pid, "z")


@pytest.mark.parametrize("text", ["", "40003009497", "218:1", "0218:", "abcd:1",
                                  "busdox::0218:1", "0218:has space", "0218:" + "x" * 51])
def test_malformed_participants_are_named(text: str) -> None:
    with pytest.raises(IdentifierError, match="participant"):
        ParticipantId.parse(text)


def test_u_naptr_regexp_only_the_rfc_4848_form() -> None:
    assert _u_naptr_url("!^.*$!https://smp.example.lv/!") == "https://smp.example.lv/"
    assert _u_naptr_url("!^(.*)$!https://\\1!") is None  # no substitution from input
    assert _u_naptr_url("!^.*$!ftp://x!") is None
    assert _u_naptr_url("") is None


def test_lookup_finds_the_signed_endpoint(network: Network) -> None:
    ap = network.pki.access_point("PLV000002")
    network.register(PID, "http://127.0.0.1:1/as4", ap.certificate)
    endpoint = lookup(ParticipantId.parse(PID), BIS_INVOICE, BILLING_PROCESS,
                      settings=settings(network), trust=Trust.load(settings(network),
                                                                   network.root))
    assert endpoint.url == "http://127.0.0.1:1/as4"
    assert endpoint.certificate == ap.certificate
    assert endpoint.smp_signer.startswith("CN=TEST SMP")
    # dnsmasq answered the NAPTR query for the hashed name
    assert dns_name(ParticipantId.parse(PID), ZONE) in \
        (network.root / "dnsmasq.log").read_text()


def test_unknown_participant_and_doctype_are_not_registered(network: Network) -> None:
    ap = network.pki.access_point("PLV000002")
    network.register(PID, "http://127.0.0.1:1/as4", ap.certificate, doctypes=(BIS_INVOICE,))
    trust = Trust.load(settings(network), network.root)
    with pytest.raises(NotRegistered, match="not registered in the SML"):
        lookup(ParticipantId.parse("0218:1"), BIS_INVOICE, BILLING_PROCESS,
               settings=settings(network), trust=trust)
    with pytest.raises(NotRegistered, match="HTTP 404"):
        lookup(ParticipantId.parse(PID), BIS_CREDIT_NOTE, BILLING_PROCESS,
               settings=settings(network), trust=trust)
    with pytest.raises(NotRegistered, match="does not receive"):
        lookup(ParticipantId.parse(PID), BIS_INVOICE, "urn:other:process",
               settings=settings(network), trust=trust)


def _publish(network: Network, document: bytes) -> None:
    network.smp.publish(PID, BIS_INVOICE, document)
    network.dnsmasq.register(PID, network.smp.url)


@pytest.mark.parametrize("case", ["tampered", "unsigned", "foreign-smp-key",
                                  "ap-key-as-smp", "endpoint-cert-untrusted"])
def test_untrusted_smp_answers_are_refused(network: Network, case: str) -> None:
    pki: TestPKI = network.pki
    ap_cert = pki.access_point("PLV000002").certificate
    signer = pki.smp()
    if case == "endpoint-cert-untrusted":
        ap_cert = pki.rogue_access_point("PLV000002").certificate
    unsigned = service_metadata(PID, BIS_INVOICE, BILLING_PROCESS, "http://127.0.0.1:1/as4",
                                ap_cert)
    if case == "foreign-smp-key":
        signer = issue("TEST SMP", None, ca=False)
    if case == "ap-key-as-smp":
        signer = pki.access_point("PLV000002")
    document = unsigned if case == "unsigned" else sign_metadata(unsigned, signer)
    if case == "tampered":
        document = document.replace(b"127.0.0.1:1/", b"127.0.0.1:2/")
    _publish(network, document)
    with pytest.raises(BadMetadata):
        lookup(ParticipantId.parse(PID), BIS_INVOICE, BILLING_PROCESS,
               settings=settings(network), trust=Trust.load(settings(network), network.root))


def test_lookup_command_prints_what_the_network_says(network: Network) -> None:
    from gateway.cli import cli

    ap = network.pki.access_point("PLV000002")
    network.register(PID, "http://127.0.0.1:1/as4", ap.certificate)
    data_dir: Path = network.data_dir("PLV000001")
    plugins = get_plugin_manager()
    plugins.hook.gateway_register_commands(cli=cli)
    run = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "peppol", "lookup", PID,
                                   "--json"], obj=plugins)
    assert run.exit_code == 0, run.output
    info = json.loads(run.output)
    assert info["endpoint"] == "http://127.0.0.1:1/as4"
    assert info["certificate_subject"].startswith("CN=PLV000002")
    assert info["dns_name"] == dns_name(ParticipantId.parse(PID), ZONE)
    missing = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "peppol", "lookup",
                                       "0218:1"], obj=plugins)
    assert missing.exit_code == 1
    assert "not registered" in missing.output and "Traceback" not in missing.output


def test_an_invoice_without_a_buyer_address_names_what_to_set(load_example: Any) -> None:
    from gateway.core.model import Invoice
    from plugins.peppol.identifiers import receiver_of

    household = Invoice.model_validate(load_example("electricity-household.json"))
    with pytest.raises(IdentifierError, match=r"no electronic address \(BT-49\)"):
        receiver_of(household)
    assert str(receiver_of(household, "0218:40003009497")) == "0218:40003009497"


@pytest.mark.parametrize("uid_matches", [True, False])
def test_one_smp_redirect_is_followed_to_the_named_certificate(network: Network,
                                                               uid_matches: bool) -> None:
    from plugins.peppol.smp import metadata_url
    from plugins.peppol.testkit import redirect_metadata

    pki = network.pki
    ap = pki.access_point("PLV000002")
    new_smp = pki.smp("TEST SMP NEW")
    real = sign_metadata(service_metadata(PID, BIS_INVOICE, BILLING_PROCESS,
                                          "http://127.0.0.1:3/as4", ap.certificate), new_smp)
    href = f"{network.smp.url}/new{metadata_url('', ParticipantId.parse(PID), BIS_INVOICE)}"
    network.smp.documents[unquote(urlsplit(href).path)] = real  # the other SMP
    uid = new_smp.certificate.subject.rfc4514_string() if uid_matches else "CN=SOMEONE ELSE"
    _publish(network, sign_metadata(redirect_metadata(href, uid), pki.smp()))
    trust = Trust.load(settings(network), network.root)
    if not uid_matches:
        with pytest.raises(BadMetadata, match="requires certificate"):
            lookup(ParticipantId.parse(PID), BIS_INVOICE, BILLING_PROCESS,
                   settings=settings(network), trust=trust)
        return
    endpoint = lookup(ParticipantId.parse(PID), BIS_INVOICE, BILLING_PROCESS,
                      settings=settings(network), trust=trust)
    assert endpoint.url == "http://127.0.0.1:3/as4"
    assert endpoint.smp_signer.startswith("CN=TEST SMP NEW")
