"""Participant → AS4 endpoint: the SML in DNS, then the SMP's signed metadata."""

from __future__ import annotations

from pathlib import Path

import httpx

from plugins.peppol.identifiers import ParticipantId
from plugins.peppol.pki import Trust
from plugins.peppol.settings import PeppolSettings
from plugins.peppol.sml import find_smp
from plugins.peppol.smp import Endpoint, endpoint_from, fetch, metadata_url, verify_signed


def lookup(participant: ParticipantId, document_type: str, process: str, *,
           settings: PeppolSettings, trust: Trust,
           client: httpx.Client | None = None) -> Endpoint:
    """Raises NotRegistered (permanent), LookupFailed (retry) or BadMetadata (permanent)."""
    if settings.smp_url:
        smp_url = settings.smp_url.rstrip("/")
    else:
        smp_url = find_smp(participant, settings.zone(), server=settings.dns_server,
                           timeout=settings.timeout).url
    url = metadata_url(smp_url, participant, document_type)
    data = fetch(url, timeout=settings.timeout, client=client)
    signed, signer = verify_signed(data, trust, url)
    return endpoint_from(signed, participant=participant, document_type=document_type,
                         process=process, trust=trust, smp_url=smp_url, signer=signer,
                         allow_http=settings.allow_http)


def load_trust(settings: PeppolSettings, data_dir: Path) -> Trust:
    return Trust.load(settings, data_dir)
