"""Participant → AS4 endpoint: the SML in DNS, then the SMP's signed metadata."""

from __future__ import annotations

from pathlib import Path

import httpx

from plugins.peppol.identifiers import ParticipantId
from plugins.peppol.pki import Trust
from plugins.peppol.settings import PeppolSettings
from plugins.peppol.sml import find_smp
from plugins.peppol.smp import (
    BadMetadata,
    Endpoint,
    SignedMetadata,
    endpoint_from,
    fetch,
    metadata_url,
    redirect_of,
    verify_signed,
)


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
    metadata = verify_signed(fetch(url, timeout=settings.timeout, client=client), trust, url)
    if (redirect := redirect_of(metadata.signed)) is not None:
        metadata, smp_url = _follow(redirect, url, settings=settings, trust=trust,
                                    client=client)
    return endpoint_from(metadata.signed, participant=participant,
                         document_type=document_type, process=process, trust=trust,
                         smp_url=smp_url, signer=metadata.signer,
                         allow_http=settings.allow_http)


def _follow(redirect: tuple[str, str], source: str, *, settings: PeppolSettings, trust: Trust,
            client: httpx.Client | None) -> tuple[SignedMetadata, str]:
    """One redirect to another SMP (SMP 1.x: at most one), whose signing certificate must
    be the one the first SMP named in CertificateUID."""
    href, uid = redirect
    if not href.startswith("https://") and not (settings.allow_http
                                                and href.startswith("http://")):
        raise BadMetadata(f"{source}: redirect to {href!r}, not an https URL")
    target = verify_signed(fetch(href, timeout=settings.timeout, client=client), trust, href)
    if redirect_of(target.signed) is not None:
        raise BadMetadata(f"{href}: a second redirect; SMP allows only one")
    if uid not in (target.subject_name, target.signer):
        raise BadMetadata(f"{href}: signed by {target.signer}, but the redirect at {source} "
                          f"requires certificate {uid!r}")
    return target, href.split("/iso6523-actorid-upis", 1)[0]


def load_trust(settings: PeppolSettings, data_dir: Path) -> Trust:
    return Trust.load(settings, data_dir)
