"""SMP: read a participant's signed service metadata (Peppol SMP 1.4) and pick the AS4
endpoint for one document type and process.

The document must be signed (an enveloped XML signature, checked with ``signxml``) by a
certificate that chains to the network's SMP CA; only the signed content is read. The
endpoint's certificate must chain to the AP CA: it is the certificate the message is
encrypted for and the one whose signature the receipt must carry.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from plugins.peppol.identifiers import (
    DOCTYPE_SCHEME,
    PROCESS_SCHEME,
    TRANSPORT_PROFILE,
    ParticipantId,
)
from plugins.peppol.pki import Trust, UntrustedCertificate
from plugins.peppol.sml import LookupFailed, NotRegistered

NS = {
    "smp": "http://busdox.org/serviceMetadata/publishing/1.0/",
    "ids": "http://busdox.org/transport/identifiers/1.0/",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
MAX_SMP_BYTES = 4 * 1024 * 1024
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                          remove_blank_text=False)


class BadMetadata(Exception):
    """The SMP answered with something that cannot be trusted or read (permanent)."""


@dataclass(frozen=True)
class Endpoint:
    """Where and to whom one document type goes."""

    participant: ParticipantId
    document_type: str
    process: str
    url: str
    certificate: x509.Certificate
    transport_profile: str
    smp_url: str
    smp_signer: str
    technical_contact: str | None = None

    def describe(self) -> dict[str, str]:
        cert = self.certificate
        return {
            "participant": str(self.participant),
            "document_type": self.document_type,
            "process": self.process,
            "transport_profile": self.transport_profile,
            "endpoint": self.url,
            "certificate_subject": cert.subject.rfc4514_string(),
            "certificate_issuer": cert.issuer.rfc4514_string(),
            "certificate_valid_until": cert.not_valid_after_utc.isoformat(),
            "smp": self.smp_url,
            "smp_signed_by": self.smp_signer,
            "technical_contact": self.technical_contact or "",
        }


def metadata_url(smp_url: str, participant: ParticipantId, document_type: str) -> str:
    return (f"{smp_url.rstrip('/')}/{quote(participant.uri, safe='')}/services/"
            f"{quote(f'{DOCTYPE_SCHEME}::{document_type}', safe='')}")


def fetch(url: str, *, timeout: float, client: httpx.Client | None = None) -> bytes:
    """GET with a size bound; 404 means not registered, 5xx and transport errors retry."""
    own = client is None
    client = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        with client.stream("GET", url, headers={"Accept": "application/xml"}) as response:
            if response.status_code == 404:
                raise NotRegistered(f"the SMP has no metadata at {url} (HTTP 404)")
            if response.status_code >= 500 or response.status_code == 429:
                raise LookupFailed(f"SMP {url} answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise BadMetadata(f"SMP {url} answered HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_SMP_BYTES:
                    raise BadMetadata(f"SMP {url}: answer larger than {MAX_SMP_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise LookupFailed(f"SMP {url}: {type(exc).__name__}: {exc}") from None
    finally:
        if own:
            client.close()


@dataclass(frozen=True)
class SignedMetadata:
    """The part of an SMP answer its signature covers, and who signed it."""

    signed: etree._Element
    certificate: x509.Certificate
    subject_name: str  # ds:X509SubjectName when given, else the certificate's subject

    @property
    def signer(self) -> str:
        return self.certificate.subject.rfc4514_string()


def verify_signed(data: bytes, trust: Trust, source: str) -> SignedMetadata:
    """The signed SignedServiceMetadata and its signer, or BadMetadata."""
    from signxml import InvalidInput, InvalidSignature, XMLVerifier
    from signxml.exceptions import InvalidCertificate, InvalidDigest

    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise BadMetadata(f"{source}: not well-formed XML ({exc})") from None
    x509_data = "ds:Signature/ds:KeyInfo/ds:X509Data"
    cert_text = root.findtext(f"{x509_data}/ds:X509Certificate", namespaces=NS)
    if not cert_text:
        raise BadMetadata(f"{source}: the service metadata is not signed (no ds:Signature "
                          "with an X509Certificate)")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode("".join(cert_text.split())))
    except ValueError:
        raise BadMetadata(f"{source}: the signature's certificate cannot be read") from None
    try:
        trust.check_smp(cert)
    except UntrustedCertificate as exc:
        raise BadMetadata(f"{source}: SMP certificate not trusted: {exc}") from None
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    try:
        result = XMLVerifier().verify(root, x509_cert=pem)
    except (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput) as exc:
        raise BadMetadata(f"{source}: the SMP signature does not verify ({exc})") from None
    signed = result.signed_xml
    if signed is None or etree.QName(signed).localname != "SignedServiceMetadata":
        raise BadMetadata(f"{source}: the signature does not cover SignedServiceMetadata")
    subject = root.findtext(f"{x509_data}/ds:X509SubjectName", namespaces=NS)
    return SignedMetadata(signed, cert, " ".join((subject or cert.subject.rfc4514_string())
                                                 .split()))


def redirect_of(signed: etree._Element) -> tuple[str, str] | None:
    """``(href, CertificateUID)`` when the SMP redirects to another SMP."""
    redirect = signed.find("smp:ServiceMetadata/smp:Redirect", NS)
    if redirect is None:
        return None
    return (redirect.get("href") or "").strip(), \
        " ".join((redirect.findtext("smp:CertificateUID", "", NS) or "").split())


def _date(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def endpoint_from(signed: etree._Element, *, participant: ParticipantId, document_type: str,
                  process: str, trust: Trust, smp_url: str, signer: str,
                  allow_http: bool = False) -> Endpoint:
    info = signed.find("smp:ServiceMetadata/smp:ServiceInformation", NS)
    if info is None:
        raise BadMetadata(f"{smp_url}: no ServiceInformation in the service metadata")
    named = ParticipantId.parse(info.findtext("ids:ParticipantIdentifier", "", NS))
    doc = info.findtext("ids:DocumentIdentifier", "", NS).strip()
    if named.key != participant.key or doc != document_type:
        raise BadMetadata(f"{smp_url}: the signed metadata is for {named} / {doc}, not for "
                          f"{participant} / {document_type}")
    now = dt.datetime.now(dt.UTC)
    found_process = False
    for proc in info.iterfind("smp:ProcessList/smp:Process", NS):
        ident = proc.find("ids:ProcessIdentifier", NS)
        if ident is None or (ident.text or "").strip() != process or \
                ident.get("scheme", PROCESS_SCHEME) != PROCESS_SCHEME:
            continue
        found_process = True
        for ep in proc.iterfind("smp:ServiceEndpointList/smp:Endpoint", NS):
            if ep.get("transportProfile") != TRANSPORT_PROFILE:
                continue
            start = _date(ep.findtext("smp:ServiceActivationDate", None, NS))
            end = _date(ep.findtext("smp:ServiceExpirationDate", None, NS))
            if (start and now < start) or (end and now > end):
                continue
            url = (ep.findtext("wsa:EndpointReference/wsa:Address", "", NS) or "").strip()
            if not url.startswith("https://") and not (allow_http and url.startswith("http://")):
                raise BadMetadata(f"{smp_url}: endpoint {url!r} is not an https URL")
            try:
                cert = x509.load_der_x509_certificate(
                    base64.b64decode("".join(ep.findtext("smp:Certificate", "", NS).split())))
            except ValueError:
                raise BadMetadata(f"{smp_url}: the endpoint certificate cannot be "
                                  "read") from None
            try:
                trust.check_ap(cert)
            except UntrustedCertificate as exc:
                raise BadMetadata(f"{smp_url}: endpoint certificate not trusted: "
                                  f"{exc}") from None
            return Endpoint(participant, document_type, process, url, cert,
                            TRANSPORT_PROFILE, smp_url, signer,
                            ep.findtext("smp:TechnicalContactUrl", None, NS))
    if not found_process:
        raise NotRegistered(f"participant {participant} does not receive {document_type} "
                            f"in process {process}")
    raise NotRegistered(f"participant {participant}: no active {TRANSPORT_PROFILE} "
                        f"endpoint for {document_type}")
