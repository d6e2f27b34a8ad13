"""SML: find a participant's SMP through DNS (Peppol SML 1.3 / PFUOI 4.4, U-NAPTR).

The name looked up is ``base32(sha256(lowercase(ICD:VALUE)))`` without ``=`` padding,
then the identifier scheme, then the SML zone, e.g.
``<hash>.iso6523-actorid-upis.acc.edelivery.tech.ec.europa.eu``. Its NAPTR records with
flag ``U`` and service ``Meta:SMP`` carry the SMP's base URL in a ``!^.*$!URL!``
regular expression (RFC 4848).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import dns.exception
import dns.rdatatype
import dns.resolver

from plugins.peppol.identifiers import PARTICIPANT_SCHEME, ParticipantId

SERVICE = "Meta:SMP"


class LookupFailed(Exception):
    """The network could not be asked; worth trying again later."""


class NotRegistered(Exception):
    """The network says the participant (or its document type) is not there: permanent."""


def dns_name(participant: ParticipantId, zone: str) -> str:
    digest = hashlib.sha256(participant.key.encode("utf-8")).digest()
    label = base64.b32encode(digest).decode("ascii").rstrip("=")
    return f"{label}.{PARTICIPANT_SCHEME}.{zone.strip('.')}"


@dataclass(frozen=True)
class SmpLocation:
    name: str
    url: str


def _resolver(server: str | None, timeout: float) -> dns.resolver.Resolver:
    if server is None:
        resolver = dns.resolver.Resolver()
    else:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise LookupFailed(f"dns_server {server!r}: expected host:port")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host.strip("[]")]
        resolver.port = int(port)
    resolver.lifetime = timeout
    return resolver


def _u_naptr_url(regexp: str) -> str | None:
    """The URL of a U-NAPTR regexp ``!^.*$!https://smp.example!``: RFC 4848 allows only
    this form, whose result does not depend on the input, so no regex engine runs on
    data from the network."""
    if len(regexp) < 3:
        return None
    delim = regexp[0]
    parts = regexp[1:].split(delim)
    if len(parts) != 3 or parts[0] != "^.*$" or parts[2] not in ("", "i"):
        return None
    url = parts[1]
    return url if url.startswith(("https://", "http://")) else None


def find_smp(participant: ParticipantId, zone: str, *, server: str | None = None,
             timeout: float = 10.0) -> SmpLocation:
    name = dns_name(participant, zone)
    try:
        answer = _resolver(server, timeout).resolve(name, dns.rdatatype.NAPTR)
    except dns.resolver.NXDOMAIN:
        raise NotRegistered(f"participant {participant} is not registered in the SML "
                            f"{zone} (no DNS name {name})") from None
    except dns.resolver.NoAnswer:
        raise NotRegistered(f"participant {participant}: {name} has no NAPTR record in "
                            f"the SML {zone}") from None
    except (dns.exception.Timeout, dns.resolver.NoNameservers, OSError) as exc:
        raise LookupFailed(f"DNS lookup of {name} failed: {exc}") from None
    records = sorted(answer, key=lambda r: (r.order, r.preference))
    for record in records:
        flags = record.flags.decode("ascii", "replace").upper()
        service = record.service.decode("ascii", "replace")
        if flags != "U" or service.lower() != SERVICE.lower():
            continue
        url = _u_naptr_url(record.regexp.decode("utf-8", "replace"))
        if url:
            return SmpLocation(name, url.rstrip("/"))
    raise NotRegistered(f"participant {participant}: {name} has no U-NAPTR record for "
                        f"service {SERVICE}")
