"""Properties of the two places where outside text becomes a path: the mailbox server's
path resolution and the remote file-name pattern."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import Bundle, Document, load_invoice
from plugins.sftp.naming import remote_name
from plugins.sftp.server import MailboxSFTP, Refused

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples"
                      / "electricity-household.json").read_text())
components = st.sampled_from(["..", ".", "", "outbox", "archive", "etc", "passwd", "a b",
                              "\\..", "..\\..", "~", "%2e%2e"])


@settings(max_examples=300, deadline=None)
@given(st.lists(components, max_size=8), st.booleans())
def test_a_resolved_path_never_climbs_out(parts, absolute):
    path = ("/" if absolute else "") + "/".join(parts)
    stack: list[str] = []
    climbs = False
    for p in parts:
        if p == "..":
            if not stack:
                climbs = True
                break
            stack.pop()
        elif p not in ("", "."):
            stack.append(p)
    if climbs:
        with pytest.raises(Refused):
            MailboxSFTP._parts(path)
    else:
        resolved = MailboxSFTP._parts(path)
        assert resolved == tuple(stack)
        assert all(p not in ("", ".", "..") and "/" not in p for p in resolved)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_no_invoice_number_makes_a_name_with_a_directory_or_a_leading_dot(number):
    data = copy.deepcopy(EXAMPLE)
    data["number"] = number
    try:
        invoice = load_invoice(data)
    except Exception:  # numbers the model refuses never reach delivery
        return
    doc = Document("json", "application/json", "x.json", b"{}")
    bundle = Bundle("id", invoice, "c", "C", "lv", (doc,), "key")
    for pattern in ("{number}.{ext}", "{seller_vat}_{number}.{ext}", "{number}"):
        name = remote_name(pattern, bundle, doc)
        assert name and "/" not in name and "\\" not in name and not name.startswith(".")
        assert name not in (".", "..")


@pytest.mark.parametrize(("path", "expected"), [
    ("/", ()), ("", ()), (".", ()), ("/outbox/", ("outbox",)), ("outbox/../archive",
                                                                ("archive",)),
    ("/outbox/./a.pdf", ("outbox", "a.pdf")), ("//outbox//a.pdf", ("outbox", "a.pdf")),
])
def test_paths_inside_the_mailbox_resolve(path, expected):
    assert MailboxSFTP._parts(path) == expected


@pytest.mark.parametrize("path", ["..", "/..", "/outbox/../..", "../outbox", "a/../../b",
                                  "/outbox/\x00x"])
def test_paths_outside_the_mailbox_are_refused(path):
    with pytest.raises(Refused):
        MailboxSFTP._parts(path)
