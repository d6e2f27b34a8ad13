"""Reading untrusted XML: no DTD, no entities, no network, bounded size.

Invoices arrive from outside (billing systems, portals, e-mail). An XML bomb or an
external entity pointing at ``/etc/passwd`` must be refused before lxml expands it, so
any DOCTYPE is rejected outright: no legitimate UBL or CII document carries one.
"""

from __future__ import annotations

import re

from lxml import etree

from gateway import InputError

#: Bigger than any real invoice (a 10,000-line UBL invoice is ~15 MB) yet small
#: enough that a mistaken upload of a database dump fails quickly.
MAX_BYTES = 64 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    collect_ids=False,
)


def parse_untrusted(data: bytes, source: str, *, max_bytes: int = MAX_BYTES) -> etree._Element:
    """Parse ``data`` as XML and return the root element, or raise :class:`InputError`."""
    if len(data) > max_bytes:
        raise InputError(f"XML file is {len(data):,} bytes; the limit is {max_bytes:,}",
                         source=source)
    if _DOCTYPE.search(data) or _ENTITY.search(data):
        raise InputError("XML with a DOCTYPE or entity declaration is refused (unsafe, and no "
                         "e-invoice syntax uses one)", source=source)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        line = f" at line {exc.lineno}" if exc.lineno else ""
        raise InputError(f"not well-formed XML{line}: {exc.msg}", source=source) from None
    if root is None:
        raise InputError("empty XML document", source=source)
    # A DOCTYPE hidden in another encoding (UTF-16) slips past the byte scan above.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InputError("XML with a DOCTYPE is refused", source=source)
    return root


_CHUNK = 64 * 1024
_XML_STARTS = (b"<", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def root_tag(data: bytes, *, max_bytes: int = MAX_BYTES) -> str | None:
    """The qualified tag of the root element, or None when ``data`` is not XML.

    Reads only up to the root's start tag, however long the prolog (licence comments,
    processing instructions) and in any encoding the XML declaration or a BOM names
    (UTF-16 included), with the same safe settings as :func:`parse_untrusted`.
    """
    if not data[:1024].lstrip().startswith(_XML_STARTS):
        return None
    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True,
                                 load_dtd=False, huge_tree=False)
    for offset in range(0, min(len(data), max_bytes), _CHUNK):
        try:
            parser.feed(data[offset:offset + _CHUNK])
        except etree.XMLSyntaxError:
            # A flaw after the root's start tag (too deep, a bad byte) still leaves the
            # root known; the parse proper reports the flaw with its line.
            return next((str(el.tag) for _event, el in parser.read_events()), None)
        for _event, element in parser.read_events():
            return str(element.tag)
    return None
