"""The hand-written MIME reads back exactly through the standard ``email`` parser,
for any text, file name and attachment bytes."""

from __future__ import annotations

import email
from email import policy

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.email import mime

# Text as a template produces it: any characters except control characters and the
# lone carriage returns that no template writes.
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\r")
               | st.just("\n") | st.just("."), max_size=400)
# File names as attachment_name makes them: no path characters, no outer spaces.
NAME = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                             blacklist_characters='/\\:*?"<>|'), min_size=1, max_size=60
               ).filter(lambda s: s.strip() == s)


@settings(max_examples=60, deadline=None)
@given(subject=(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                        min_size=1, max_size=120)
                | st.text(st.sampled_from("abc XYZ-.,:0"), min_size=1, max_size=200)
                ).filter(lambda s: s.strip() == s and "  " not in s),
       text=TEXT, html=TEXT,
       files=st.lists(st.tuples(NAME, st.binary(max_size=3000)), max_size=3),
       display=NAME)
def test_written_message_reads_back(subject: str, text: str, html: str,
                                    files: list[tuple[str, bytes]], display: str) -> None:
    headers = [f"From: {mime.mailbox(display, 'rekini@example.lv')}",
               mime.address_list("To", [f"r{n}@example.lv" for n in range(8)]),
               mime.header_text("Subject", subject)]
    parts = [mime.Part("application/octet-stream", name, content) for name, content in files]
    data = mime.write(headers, text, html, parts, boundary_seed="abc123")

    assert data.isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    msg = email.message_from_bytes(data, policy=policy.default)
    assert all(not part.defects for part in msg.walk())
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == display
    assert [a.addr_spec for a in msg["To"].addresses] == [f"r{n}@example.lv"
                                                          for n in range(8)]
    for subtype, body in (("plain", text), ("html", html)):
        got = msg.get_body((subtype,)).get_content().replace("\r\n", "\n")
        assert got.rstrip("\n") == body.rstrip("\n")
    attachments = list(msg.iter_attachments())
    assert [(p.get_filename(), p.get_content()) for p in attachments] == files
