"""A read cursor that remembers which elements were used, so nothing is dropped unseen.

The readers walk a document through :class:`Cursor`; afterwards :func:`unread`
lists every element that no reader looked at (the top-most of each unread subtree).
Those land in ``Invoice.extensions`` under their XPath and are logged, which is how
"unknown extensions are kept where the model has a place, and reported otherwise".
"""

from __future__ import annotations

import logging
from typing import Any

from lxml import etree

from .namespaces import PREFIXES
from .xmlutil import parse_decimal

log = logging.getLogger("gateway.xml_einvoice")
MAX_EXTENSION_CHARS = 4000

Data = dict[str, Any]


class Cursor:
    __slots__ = ("el", "ns", "seen")

    def __init__(self, el: etree._Element, ns: dict[str, str], seen: set[etree._Element]
                 ) -> None:
        self.el = el
        self.ns = ns
        self.seen = seen
        seen.add(el)

    def _step(self, el: etree._Element, path: str, many: bool) -> list[etree._Element]:
        current = [el]
        for part in path.split("/"):
            found: list[etree._Element] = []
            for c in current:
                if many:
                    found.extend(c.findall(part, self.ns))
                else:
                    hit = c.find(part, self.ns)
                    if hit is not None:
                        found.append(hit)
                        break
            self.seen.update(found)
            if not found:
                return []
            current = found
        return current

    def find(self, path: str) -> Cursor | None:
        hits = self._step(self.el, path, many=False)
        return Cursor(hits[0], self.ns, self.seen) if hits else None

    def findall(self, path: str) -> list[Cursor]:
        return [Cursor(e, self.ns, self.seen) for e in self._step(self.el, path, many=True)]

    def text(self, path: str | None = None) -> str | None:
        """Stripped text of the first element at ``path`` (or of this one); None when
        absent or empty."""
        if path is None:
            el = self.el
        else:
            hits = self._step(self.el, path, many=False)
            if not hits:
                return None
            el = hits[0]
        value = (el.text or "").strip()
        return value or None

    def attr(self, name: str) -> str | None:
        value = self.el.get(name)
        return value.strip() if value and value.strip() else None


def xpath_of(el: etree._Element) -> str:
    """``/Invoice/cac:InvoiceLine[2]/cbc:Foo`` with short prefixes and sibling positions."""
    steps = []
    node: etree._Element | None = el
    while node is not None:
        qname = etree.QName(node)
        prefix = PREFIXES.get(qname.namespace or "")
        name = f"{prefix}:{qname.localname}" if prefix else qname.localname
        if prefix is None and qname.namespace:
            name = f"*[local-name()='{qname.localname}']"
        parent = node.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def unread(root: etree._Element, seen: set[etree._Element]) -> dict[str, str]:
    """Top-most unread elements as {XPath: content}."""
    out: dict[str, str] = {}
    stack = [root]
    while stack:
        el = stack.pop()
        for child in el:
            if not isinstance(child.tag, str):  # comments, processing instructions
                continue
            if child in seen:
                stack.append(child)
                continue
            if len(child):
                content = etree.tostring(child, encoding="unicode", with_tail=False)
            else:
                content = (child.text or "").strip()
            out[xpath_of(child)] = content[:MAX_EXTENSION_CHARS]
    return dict(sorted(out.items()))


def report_unread(extensions: dict[str, str], source: str) -> None:
    for path in extensions:
        log.warning("%s: %s has no place in the EN 16931 model; kept in the invoice's "
                    "extensions", source, path)


def clean(data: Data) -> Data:
    """Leave out what the document did not have, so model defaults apply."""
    return {k: v for k, v in data.items() if v not in (None, [], {})}


def identifier(c: Cursor | None) -> Data | None:
    """An identifier element with its ``schemeID`` (the same in UBL and CII)."""
    if c is None or c.text() is None:
        return None
    return clean({"value": c.text(), "scheme": c.attr("schemeID")})


def decimal_at(c: Cursor | None, path: str) -> Any:
    if c is None:
        return None
    text = c.text(path)
    return parse_decimal(text) if text is not None else None
