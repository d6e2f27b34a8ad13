"""A private Peppol-like PKI for tests, benchmarks and local trial networks.

Peppol's own PKI issues access-point and SMP certificates under an OpenPeppol root;
this builds the same shape (root → AP CA → AP certificates, root → SMP CA → SMP
certificate) with ``cryptography``, plus the broken cases a receiver must refuse: an
expired AP certificate and one from a CA nobody trusts. Never use it in production.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_BITS = 2048  # the Peppol PKI uses RSA; 2048 keeps test set-up fast


@dataclass(frozen=True)
class Issued:
    """One certificate with its private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        key.chmod(0o600)
        return cert, key


def _name(cn: str, org: str = "Test Peppol Authority") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn: str, issuer: Issued | None, *, ca: bool, days: int = 365,
          not_before: dt.datetime | None = None, org: str = "Test Peppol Authority") -> Issued:
    """A certificate for ``cn`` signed by ``issuer`` (self-signed when ``None``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    subject = _name(cn, org)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.certificate.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False,
                   key_encipherment=not ca, data_encipherment=False, key_agreement=False,
                   key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
                   critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass
class TestPKI:
    """Root, AP CA and SMP CA, and certificates issued under them on demand."""

    __test__ = False  # a fixture helper, not a pytest test class

    root: Issued
    ap_ca: Issued
    smp_ca: Issued
    _made: dict[str, Issued] = field(default_factory=dict)

    @classmethod
    def create(cls) -> TestPKI:
        root = issue("TEST PEPPOL ROOT CA", None, ca=True, days=3650)
        return cls(root=root,
                   ap_ca=issue("TEST PEPPOL ACCESS POINT CA", root, ca=True, days=3650),
                   smp_ca=issue("TEST PEPPOL SERVICE METADATA PUBLISHER CA", root, ca=True,
                                days=3650))

    def access_point(self, seat_id: str, *, expired: bool = False) -> Issued:
        """An AP certificate whose CN is the seat id (``PLV000001``), as Peppol issues them."""
        key = f"ap:{seat_id}:{expired}"
        if key not in self._made:
            if expired:
                start = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
                self._made[key] = issue(seat_id, self.ap_ca, ca=False, days=30,
                                        not_before=start)
            else:
                self._made[key] = issue(seat_id, self.ap_ca, ca=False)
        return self._made[key]

    def smp(self, name: str = "TEST SMP") -> Issued:
        key = f"smp:{name}"
        if key not in self._made:
            self._made[key] = issue(name, self.smp_ca, ca=False)
        return self._made[key]

    def rogue_access_point(self, seat_id: str) -> Issued:
        """A certificate naming ``seat_id`` from a CA outside the network: a wrong one."""
        key = f"rogue:{seat_id}"
        if key not in self._made:
            rogue_root = issue("ROGUE ROOT CA", None, ca=True, org="Rogue")
            self._made[key] = issue(seat_id, rogue_root, ca=False, org="Rogue")
        return self._made[key]

    def write_trust(self, directory: Path) -> dict[str, Path]:
        """PEM files for ``[plugins.peppol]``: root_ca_file, ap_ca_file, smp_ca_file."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, issued in (("root_ca_file", self.root), ("ap_ca_file", self.ap_ca),
                             ("smp_ca_file", self.smp_ca)):
            path = directory / f"{name.removesuffix('_file')}.pem"
            path.write_bytes(issued.cert_pem)
            paths[name] = path
        return paths


# --------------------------------------------------------------------------- SMP documents

SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
IDS_NS = "http://busdox.org/transport/identifiers/1.0/"
WSA_NS = "http://www.w3.org/2005/08/addressing"


def service_metadata(participant: str, document_type: str, process: str, endpoint_url: str,
                     ap_certificate: x509.Certificate, *,
                     transport_profile: str = "peppol-transport-as4-v2_0") -> bytes:
    """An unsigned SignedServiceMetadata document as an SMP publishes it (SMP 1.x)."""
    import base64

    from lxml import etree

    root = etree.Element(f"{{{SMP_NS}}}SignedServiceMetadata",
                         nsmap={"smp": SMP_NS, "ids": IDS_NS, "wsa": WSA_NS})
    info = etree.SubElement(etree.SubElement(root, f"{{{SMP_NS}}}ServiceMetadata"),
                            f"{{{SMP_NS}}}ServiceInformation")
    etree.SubElement(info, f"{{{IDS_NS}}}ParticipantIdentifier",
                     scheme="iso6523-actorid-upis").text = participant
    etree.SubElement(info, f"{{{IDS_NS}}}DocumentIdentifier",
                     scheme="busdox-docid-qns").text = document_type
    proc = etree.SubElement(etree.SubElement(info, f"{{{SMP_NS}}}ProcessList"),
                            f"{{{SMP_NS}}}Process")
    etree.SubElement(proc, f"{{{IDS_NS}}}ProcessIdentifier",
                     scheme="cenbii-procid-ubl").text = process
    ep = etree.SubElement(etree.SubElement(proc, f"{{{SMP_NS}}}ServiceEndpointList"),
                          f"{{{SMP_NS}}}Endpoint", transportProfile=transport_profile)
    etree.SubElement(etree.SubElement(ep, f"{{{WSA_NS}}}EndpointReference"),
                     f"{{{WSA_NS}}}Address").text = endpoint_url
    etree.SubElement(ep, f"{{{SMP_NS}}}RequireBusinessLevelSignature").text = "false"
    etree.SubElement(ep, f"{{{SMP_NS}}}Certificate").text = base64.b64encode(
        ap_certificate.public_bytes(serialization.Encoding.DER)).decode()
    etree.SubElement(ep, f"{{{SMP_NS}}}ServiceDescription").text = "Test access point"
    etree.SubElement(ep, f"{{{SMP_NS}}}TechnicalContactUrl").text = "mailto:ap@example.test"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def sign_metadata(document: bytes, signer: Issued) -> bytes:
    """Sign a SignedServiceMetadata document as an SMP does (enveloped, RSA-SHA256)."""
    from lxml import etree
    from signxml import XMLSigner
    from signxml.algorithms import CanonicalizationMethod

    root = etree.fromstring(document)
    signed = XMLSigner(signature_algorithm="rsa-sha256", digest_algorithm="sha256",
                       c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0).sign(
        root, key=signer.key_pem, cert=[signer.cert_pem.decode()])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def redirect_metadata(href: str, certificate_uid: str) -> bytes:
    """An unsigned SMP answer that sends the client to another SMP (``Redirect``)."""
    from lxml import etree

    root = etree.Element(f"{{{SMP_NS}}}SignedServiceMetadata", nsmap={"smp": SMP_NS})
    redirect = etree.SubElement(etree.SubElement(root, f"{{{SMP_NS}}}ServiceMetadata"),
                                f"{{{SMP_NS}}}Redirect", href=href)
    etree.SubElement(redirect, f"{{{SMP_NS}}}CertificateUID").text = certificate_uid
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
