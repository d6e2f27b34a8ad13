"""The EPC QR code's own encoder and SVG writer, held against segno (an independent
encoder and writer) as the oracle, module for module and byte for byte."""

from __future__ import annotations

import ctypes
import io
import random
from decimal import Decimal

import pytest
import segno
import segno.writers
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.pdf.qr import QR_MASK, epc_payload, qr_code, qr_svg
from plugins.pdf.qrencoder import (
    QRCode,
    _data_capacity,
    _data_codewords,
    _symbol,
    byte_capacity,
    encode,
)

LATVIAN = "āčēģīķļņšūžĀČĒĢĪĶĻŅŠŪŽ"


def segno_code(payload: str) -> segno.QRCode:
    """What the invoice drew before our encoder: M, the fixed mask, byte mode (which
    segno picks by itself for every EPC payload, as they hold line breaks)."""
    return segno.make(payload, error="m", micro=False, boost_error=False, encoding="utf-8",
                      mask=QR_MASK, mode="byte")


def rows(code: segno.QRCode) -> tuple[bytes, ...]:
    return tuple(bytes(row) for row in code.matrix)


def standard_codewords(data: bytes, version: int) -> bytes:
    """ISO/IEC 18004 §7.4 spelled out bit by bit as text, apart from the encoder's ints."""
    count_bits = 8 if version < 10 else 16
    bits = "0100" + format(len(data), f"0{count_bits}b") + "".join(f"{b:08b}" for b in data)
    bits += "0000"  # the terminator
    bits += "0" * (-len(bits) % 8)
    stream = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    pad = bytes([0xEC, 0x11][i % 2] for i in range(_data_capacity(version) - len(stream)))
    return stream + pad


def segno_codewords(data: bytes, version: int) -> bytes:
    """The data codewords segno 1.6 writes: after a stream that already ends on a
    codeword boundary it adds a zero codeword before the pad codewords (segno issue
    #148; readers stop at the terminator, so both decode the same)."""
    stream = standard_codewords(data, version)[:(8 if version < 10 else 16) // 8 + 1
                                                 + len(data)]
    return (stream + b"\0" + bytes([0xEC, 0x11]) * 1200)[:_data_capacity(version)]


def payloads(seed: int, count: int) -> list[str]:
    """EPC-shaped payloads and free text of 1 to 331 bytes, ASCII and Latvian."""
    rnd = random.Random(seed)
    alphabet = "abcdefXYZ0123456789 -./\n" + LATVIAN
    out = []
    for _ in range(count):
        size = rnd.randint(1, 331)
        text = "".join(rnd.choice(alphabet) for _ in range(size))
        out.append(text.encode()[:size].decode(errors="ignore") or "x")
    for amount, reference in ((Decimal("0.01"), "RF18 5390 0754 7034"),
                              (Decimal("78.72"), "Rēķins E2611-00123 līgums 100234567"),
                              (Decimal("999999999.99"), "ž" * 70)):
        payload = epc_payload(name="Daugavas Elektrība AS", iban="LV62 HABA 0551 2345 6789 0",
                              amount=amount, currency="EUR", reference=reference,
                              bic="HABALV22")
        assert payload is not None
        out.append(payload)
    return out


@pytest.mark.parametrize("version", range(1, 41))
def test_a_full_version_is_segnos_symbol_module_for_module(version: int) -> None:
    """A payload that fills its version leaves no room for segno's extra codeword, so
    there the two encoders must agree on every module: layout, format and version
    information, block interleaving, Reed–Solomon and mask of every version."""
    size = byte_capacity(version)
    payload = ("BCD\n002\n1\nSCT\n\n" + "Rēķins E2611 " * 200).encode()[:size]
    payload = payload.decode(errors="ignore").encode().ljust(size, b"x")
    ours = encode(payload, mask=QR_MASK)
    theirs = segno_code(payload.decode())
    assert (ours.version, ours.matrix) == (theirs.version, rows(theirs))


@pytest.mark.parametrize("payload", payloads(seed=18004, count=60))
def test_any_payload_is_segnos_symbol_given_segnos_padding(payload: str) -> None:
    data = payload.encode()
    theirs = segno_code(payload)
    ours = qr_code(payload)
    assert ours.version == theirs.version and ours.mask == QR_MASK and ours.error == "M"
    assert _data_codewords(data, ours.version) == standard_codewords(data, ours.version)
    assert _symbol(segno_codewords(data, ours.version), ours.version, QR_MASK) == rows(theirs)
    # and where the padding differs, only data codewords differ: same size, same rows
    # of function patterns (the top finder rows carry only finder, timing and format)
    assert ours.size == len(theirs.matrix) and ours.matrix[0][:7] == b"\1" * 7


@settings(max_examples=80, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0,
               max_size=300))
def test_generated_payloads_are_segnos_symbol_given_segnos_padding(text: str) -> None:
    payload = "BCD\n002\n1\nSCT\n\n" + text
    data = payload.encode()
    ours = qr_code(payload)
    theirs = segno_code(payload)
    assert ours.version == theirs.version
    assert _symbol(segno_codewords(data, ours.version), ours.version, QR_MASK) == rows(theirs)


def test_the_data_codewords_of_a_short_payload() -> None:
    """Worked by hand from §7.4: mode 0100, count 00000100, "\\nabc", terminator 0000,
    then the pad codewords 11101100 and 00010001 to version 1-M's 16 codewords."""
    assert _data_codewords(b"\nabc", 1).hex(" ") == (
        "40 40 a6 16 26 30 ec 11 ec 11 ec 11 ec 11 ec 11")


# ISO/IEC 18004 table 7: byte mode characters at level M
@pytest.mark.parametrize(("version", "capacity"),
                         [(1, 14), (6, 106), (7, 122), (9, 180), (10, 213), (13, 331),
                          (27, 1125), (40, 2331)])
def test_capacity_edges(version: int, capacity: int) -> None:
    assert byte_capacity(version) == capacity
    assert encode(b"y" * capacity, mask=QR_MASK).version == version
    if version < 40:
        assert encode(b"y" * (capacity + 1), mask=QR_MASK).version == version + 1
    assert encode(b"y", mask=QR_MASK).version == 1


def test_more_than_version_40_holds_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"2332 bytes do not fit .*at most 2331"):
        encode(b"y" * 2332, mask=QR_MASK)


def test_a_data_mask_outside_0_to_7_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mask is 0 to 7, not 8"):
        encode(b"y", mask=8)


def test_the_epc_payload_cap_fits() -> None:
    assert qr_code("ž" * 165 + "x").version == 13  # 331 bytes, the most epc_payload gives


def segno_svg(matrix: tuple[bytes, ...]) -> str:
    written = io.BytesIO()
    segno.writers.write_svg(matrix, (len(matrix), len(matrix)), written, scale=4, border=0,
                            dark="#000", xmldecl=False, nl=False)
    return written.getvalue().decode()


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=300))
def test_qr_svg_is_the_document_segno_writes(text: str) -> None:
    """The fast SVG writer draws the same modules as segno's own writer, byte for byte."""
    code = qr_code("BCD\n002\n1\nSCT\n\n" + text)
    assert qr_svg(code) == segno_svg(code.matrix)
    assert qr_svg(code) == qr_svg(code)  # the step table gives what it computed


def test_qr_svg_of_rows_without_dark_modules_and_single_modules() -> None:
    """Rows with no dark module at all, lone modules at both edges, a row ending dark
    then one starting dark: what a real symbol rarely or never shows."""
    grid = [bytearray(21) for _ in range(21)]
    grid[0][0] = grid[0][20] = grid[1][0] = 1
    grid[5][3:6] = b"\1\1\1"
    grid[5][7] = grid[5][20] = grid[6][0] = 1
    grid[20][:] = b"\1" * 21
    matrix = tuple(bytes(row) for row in grid)
    code = QRCode(version=1, mask=QR_MASK, matrix=matrix)
    assert qr_svg(code) == segno_svg(matrix)
    assert qr_svg(code) == segno_svg(matrix)  # again, now from the step table


def zbar_read(pixels: bytes, width: int, height: int) -> list[bytes]:
    """The QR codes zbar finds in a grey image, as the bytes the symbols hold.

    zbar is asked for the bytes themselves (its "binary" setting): without an ECI it
    otherwise guesses a text encoding and takes short UTF-8 for Shift JIS, while a
    banking app reads EPC payloads as UTF-8 as the payload's third line says."""
    from pyzbar import wrapper as zbar  # libzbar0 comes from scripts/setup.sh

    binary = 4  # ZBAR_CFG_BINARY in zbar.h (0.23), which pyzbar's enum does not name
    grey = int.from_bytes(b"Y800", "little")
    found = []
    scanner = zbar.zbar_image_scanner_create()
    try:
        zbar.zbar_image_scanner_set_config(scanner, zbar.ZBarSymbol.NONE,
                                           zbar.ZBarConfig.CFG_ENABLE, 0)
        zbar.zbar_image_scanner_set_config(scanner, zbar.ZBarSymbol.QRCODE,
                                           zbar.ZBarConfig.CFG_ENABLE, 1)
        assert zbar.zbar_image_scanner_set_config(scanner, zbar.ZBarSymbol.QRCODE,
                                                  binary, 1) == 0
        image = zbar.zbar_image_create()
        try:
            zbar.zbar_image_set_format(image, grey)
            zbar.zbar_image_set_size(image, width, height)
            zbar.zbar_image_set_data(image, ctypes.cast(pixels, ctypes.c_void_p), len(pixels),
                                     None)
            assert zbar.zbar_scan_image(scanner, image) >= 0
            symbol = zbar.zbar_image_first_symbol(image)
            while symbol:
                found.append(ctypes.string_at(zbar.zbar_symbol_get_data(symbol),
                                              zbar.zbar_symbol_get_data_length(symbol)))
                symbol = zbar.zbar_symbol_next(symbol)
        finally:
            zbar.zbar_image_destroy(image)
    finally:
        zbar.zbar_image_scanner_destroy(scanner)
    return found


def test_a_real_reader_reads_the_payload_back() -> None:
    """zbar (Debian's libzbar0, through pyzbar) scans the symbols as a banking app's
    camera would, quiet zone and all, and gets the payload's bytes back."""
    scale, quiet = 4, 4
    for payload in payloads(seed=11649, count=12):
        code = qr_code(payload)
        width = (code.size + 2 * quiet) * scale
        light_rows = b"\xff" * width * scale * quiet
        margin = b"\xff" * quiet * scale
        pixels = bytearray(light_rows)
        for row in code.matrix:
            line = bytes(0 if dark else 0xFF for dark in row for _ in range(scale))
            pixels += (margin + line + margin) * scale
        pixels += light_rows
        assert zbar_read(bytes(pixels), width, width) == [payload.encode()], payload
