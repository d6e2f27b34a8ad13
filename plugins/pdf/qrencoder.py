"""A QR Code Model 2 encoder (ISO/IEC 18004) for exactly what the EPC payment code needs.

Byte mode (the payload's UTF-8 bytes, no ECI, as EPC069-12 asks), error correction
level M, the smallest of versions 1–40 that holds the bytes, and one fixed data mask
chosen by the caller. Everything that does not depend on the data is worked out once a
version and kept: the function patterns, the order the data modules are filled in,
the mask over them, the Reed–Solomon tables. What is left for a payload is a handful of
operations on ints, bytes and str done in C (a few dozen Python steps, not one a
module): about 0.06 ms of CPU for a typical EPC code (120–200 bytes, versions 6–10).
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache, reduce

# Error correction level M, ISO/IEC 18004 table 9: per version, the error correction
# codewords of each block, then (count, data codewords) of each of the one or two
# groups of blocks.
_BLOCKS_M: tuple[tuple[int, tuple[tuple[int, int], ...]], ...] = (
    (10, ((1, 16),)), (16, ((1, 28),)), (26, ((1, 44),)), (18, ((2, 32),)),
    (24, ((2, 43),)), (16, ((4, 27),)), (18, ((4, 31),)), (22, ((2, 38), (2, 39))),
    (22, ((3, 36), (2, 37))), (26, ((4, 43), (1, 44))), (30, ((1, 50), (4, 51))),
    (22, ((6, 36), (2, 37))), (22, ((8, 37), (1, 38))), (24, ((4, 40), (5, 41))),
    (24, ((5, 41), (5, 42))), (28, ((7, 45), (3, 46))), (28, ((10, 46), (1, 47))),
    (26, ((9, 43), (4, 44))), (26, ((3, 44), (11, 45))), (26, ((3, 41), (13, 42))),
    (26, ((17, 42),)), (28, ((17, 46),)), (28, ((4, 47), (14, 48))),
    (28, ((6, 45), (14, 46))), (28, ((8, 47), (13, 48))), (28, ((19, 46), (4, 47))),
    (28, ((22, 45), (3, 46))), (28, ((3, 45), (23, 46))), (28, ((21, 45), (7, 46))),
    (28, ((19, 47), (10, 48))), (28, ((2, 46), (29, 47))), (28, ((10, 46), (23, 47))),
    (28, ((14, 46), (21, 47))), (28, ((14, 46), (23, 47))), (28, ((12, 47), (26, 48))),
    (28, ((6, 47), (34, 48))), (28, ((29, 46), (14, 47))), (28, ((13, 46), (32, 47))),
    (28, ((40, 47), (7, 48))), (28, ((18, 47), (31, 48))),
)
_LEVEL_M = 0b00  # the level's two bits in the format information (L=01, M=00, Q=11, H=10)
_BYTE_MODE = 0b0100
_PAD = bytes((0xEC, 0x11)) * 1500  # the pad codewords, alternating, more than v40 holds


def _data_capacity(version: int) -> int:
    """Data codewords of ``version`` at level M."""
    return sum(count * size for count, size in _BLOCKS_M[version - 1][1])


def _count_bits(version: int) -> int:
    """Width of byte mode's character count indicator (table 3)."""
    return 8 if version < 10 else 16


def byte_capacity(version: int) -> int:
    """The most payload bytes ``version`` holds in byte mode at level M: the data
    codewords less the mode indicator (4 bits) and the character count."""
    return (_data_capacity(version) * 8 - 4 - _count_bits(version)) // 8


# --- GF(256) with the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D) ---------

def _gf_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512  # doubled so a product needs no "mod 255"
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _gf_tables()


def _gf_mul(a: int, b: int) -> int:
    return _EXP[_LOG[a] + _LOG[b]] if a and b else 0


@cache
def _rs_position_tables(ecc_len: int) -> tuple[list[int], ...]:
    """For a block with ``ecc_len`` error correction codewords: entry ``d`` is, for
    each byte value, what that byte contributes to the remainder when ``d`` data
    codewords follow it, as a big-endian int of ``ecc_len`` bytes; as many entries as
    the longest data block of any version with that many error correction codewords
    (one table for all of them: at most 12 288 ints).

    The remainder of the division by the generator is linear over GF(2), so a block's
    error correction is the XOR of its bytes' contributions: one C-level reduce over
    table lookups a block instead of a shift register stepped in Python."""
    generator = [1]  # (x - a^0)(x - a^1)…(x - a^(ecc_len-1)), highest degree first
    for power in range(ecc_len):
        root = _EXP[power]
        generator = [a ^ _gf_mul(b, root)
                     for a, b in zip([*generator, 0], [0, *generator], strict=True)]
    feedback = [int.from_bytes(bytes(_gf_mul(value, c) for c in generator[1:]), "big")
                for value in range(256)]
    shift = 8 * (ecc_len - 1)
    keep = (1 << (8 * ecc_len)) - 1
    longest = max(length for ecc, groups in _BLOCKS_M if ecc == ecc_len
                  for _, length in groups)
    tables = [feedback]
    for _ in range(longest - 1):
        # one more zero codeword behind the byte: one more step of the division
        tables.append([((r << 8) & keep) ^ feedback[r >> shift] for r in tables[-1]])
    return tuple(tables)


# --- the symbol's layout ------------------------------------------------------------

def _bch(data: int, generator: int, length: int) -> int:
    """``data`` followed by the remainder of its division by ``generator`` (a BCH code
    over GF(2)), ``length`` bits in all."""
    degree = generator.bit_length() - 1
    remainder = data << degree
    for bit in range(length - 1, degree - 1, -1):
        if remainder >> bit & 1:
            remainder ^= generator << (bit - degree)
    return data << degree | remainder


def _alignment_centres(version: int) -> list[int]:
    """Row/column coordinates of the alignment pattern centres (annex E): the first at
    6, the last 7 from the far edge, the others spaced evenly by an even step between
    them, any odd space going to the first gap (version 32 is the table's exception)."""
    if version == 1:
        return []
    count = version // 7 + 2
    last = version * 4 + 10
    step = 26 if version == 32 else -(-(last - 6) // (2 * (count - 1))) * 2
    return [6] + [last - step * i for i in range(count - 2, -1, -1)]


def _mask_dark(mask: int, row: int, col: int) -> bool:
    """Whether data mask ``mask`` (table 10) inverts the module at ``row``, ``col``."""
    match mask:
        case 0:
            return (row + col) % 2 == 0
        case 1:
            return row % 2 == 0
        case 2:
            return col % 3 == 0
        case 3:
            return (row + col) % 3 == 0
        case 4:
            return (row // 2 + col // 3) % 2 == 0
        case 5:
            return row * col % 2 + row * col % 3 == 0
        case 6:
            return (row * col % 2 + row * col % 3) % 2 == 0
        case 7:
            return ((row + col) % 2 + row * col % 3) % 2 == 0
    raise ValueError(f"a QR data mask is 0 to 7, not {mask}")


@dataclass(frozen=True)
class _Layout:
    """What a version and mask fix before any data: where each module comes from."""

    size: int
    data_modules: int  # codeword bits plus the remainder bits
    mask_bits: int  # the mask over the data modules, in placement order, first bit high
    cells: operator.itemgetter  # row by row: index into the placed bits + light, dark
    interleave: operator.itemgetter  # final codeword order from blocks one after another
    # (start, end) of each data block with the Reed–Solomon tables of its positions
    blocks: tuple[tuple[int, int, tuple[list[int], ...]], ...]
    ecc_len: int


@cache
def _layout(version: int, mask: int) -> _Layout:
    size = version * 4 + 17
    # None: a data module; otherwise the function module's colour
    grid: list[list[int | None]] = [[None] * size for _ in range(size)]

    def put(row: int, col: int, dark: int) -> None:
        grid[row][col] = dark

    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        # finder (7×7 rings dark/light/dark 3×3) and its light separator
        for r in range(-1, 8):
            for c in range(-1, 8):
                if 0 <= top + r < size and 0 <= left + c < size:
                    ring = max(abs(r - 3), abs(c - 3))
                    put(top + r, left + c, int(ring != 2 and ring != 4))
    for i in range(8, size - 8):
        put(6, i, int(i % 2 == 0))
        put(i, 6, int(i % 2 == 0))
    centres = _alignment_centres(version)
    last = centres[-1] if centres else 6
    on_finders = {(6, 6), (6, last), (last, 6)}
    for row in centres:
        for col in centres:
            if (row, col) not in on_finders:
                for r in range(-2, 3):
                    for c in range(-2, 3):
                        put(row + r, col + c, int(max(abs(r), abs(c)) != 1))
    put(size - 8, 8, 1)  # the dark module
    fmt = _bch(_LEVEL_M << 3 | mask, 0x537, 15) ^ 0x5412
    for i in range(15):
        bit = fmt >> i & 1
        # beside the top-left finder: bits 0–7 down column 8, 8–14 leftwards along row 8,
        # both stepping over the timing pattern
        if i < 6:
            put(i, 8, bit)
        elif i < 8:
            put(i + 1, 8, bit)
        elif i == 8:
            put(8, 7, bit)
        else:
            put(8, 14 - i, bit)
        # the copy: 0–7 leftwards along row 8 under the top-right finder, 8–14 down
        # column 8 beside the bottom-left one
        if i < 8:
            put(8, size - 1 - i, bit)
        else:
            put(size - 15 + i, 8, bit)
    if version >= 7:
        info = _bch(version, 0x1F25, 18)
        for i in range(18):
            bit = info >> i & 1
            put(i // 3, size - 11 + i % 3, bit)  # left of the top-right finder
            put(size - 11 + i % 3, i // 3, bit)  # and transposed, above the bottom-left

    # Data modules are filled in two-column strips from the right, up then down,
    # right column before left, skipping the vertical timing column (§7.7.3).
    order: list[tuple[int, int]] = []
    upward = True
    right = size - 1
    while right > 0:
        if right == 6:
            right = 5
        rows = range(size - 1, -1, -1) if upward else range(size)
        for row in rows:
            for col in (right, right - 1):
                if grid[row][col] is None:
                    order.append((row, col))
        upward = not upward
        right -= 2

    data_modules = len(order)
    index = {cell: n for n, cell in enumerate(order)}
    cells = [index[(r, c)] if grid[r][c] is None else data_modules + (grid[r][c] or 0)
             for r in range(size) for c in range(size)]
    mask_bits = int("".join("1" if _mask_dark(mask, r, c) else "0" for r, c in order), 2)

    ecc_len, groups = _BLOCKS_M[version - 1]
    blocks: list[tuple[int, int]] = []
    start = 0
    for count, length in groups:
        for _ in range(count):
            blocks.append((start, length))
            start += length
    total = start + ecc_len * len(blocks)
    if total != data_modules // 8:  # a wrong row in _BLOCKS_M, never the data
        raise AssertionError(f"version {version}: block table says {total} codewords, "
                             f"the symbol holds {data_modules // 8}")
    # Codewords go out column by column across the blocks, data then error correction
    # (§7.6): position k of the result takes codeword ``codeword_order[k]`` of the data
    # blocks laid one after another, then of their error correction laid the same way.
    longest = max(length for _, length in blocks)
    codeword_order = [s + i for i in range(longest) for s, length in blocks if i < length]
    codeword_order += [start + b * ecc_len + i for i in range(ecc_len)
                       for b in range(len(blocks))]
    tables = _rs_position_tables(ecc_len)
    return _Layout(size=size, data_modules=data_modules, mask_bits=mask_bits,
                   cells=operator.itemgetter(*cells),
                   interleave=operator.itemgetter(*codeword_order),
                   blocks=tuple((s, s + length, tables[length - 1::-1]) for s, length in blocks),
                   ecc_len=ecc_len)


@dataclass(frozen=True)
class QRCode:
    """An encoded symbol: ``matrix`` is its rows, one byte a module, 1 for dark, no quiet
    zone."""

    version: int
    mask: int
    matrix: tuple[bytes, ...]
    error: str = "M"

    @property
    def size(self) -> int:
        return len(self.matrix)


_BIT_BYTES = bytes.maketrans(b"01", b"\x00\x01")


_BYTE_CAPACITIES = tuple(byte_capacity(version) for version in range(1, 41))


def encode(data: bytes, *, mask: int) -> QRCode:
    """The level-M byte-mode QR code of ``data`` in the smallest version that holds it,
    with data mask ``mask`` (0–7). ValueError when more than version 40 holds (2331
    bytes)."""
    if not 0 <= mask <= 7:
        raise ValueError(f"a QR data mask is 0 to 7, not {mask}")
    version = bisect_left(_BYTE_CAPACITIES, len(data)) + 1
    if version > 40:
        raise ValueError(f"{len(data)} bytes do not fit in a QR code at error correction "
                         f"M in byte mode (at most {_BYTE_CAPACITIES[-1]})")
    return QRCode(version=version, mask=mask,
                  matrix=_symbol(_data_codewords(data, version), version, mask))


def _data_codewords(data: bytes, version: int) -> bytes:
    """Mode indicator, character count, the bytes, the terminator, then pad codewords
    up to the version's data capacity (§7.4). ``data`` must fit."""
    count_bits = _count_bits(version)
    # mode and count are 12 or 20 bits, so with the terminator's four zero bits the
    # stream ends on a codeword boundary: no padding bits, the pad codewords follow
    header = (_BYTE_MODE << count_bits | len(data)) << 8 * len(data)
    stream = ((header | int.from_bytes(data, "big")) << 4).to_bytes(
        (count_bits + 8) // 8 + len(data), "big")
    return stream + _PAD[:_data_capacity(version) - len(stream)]


def _symbol(codewords: bytes, version: int, mask: int) -> tuple[bytes, ...]:
    """The module rows of ``version`` holding data codewords ``codewords`` (exactly the
    version's data capacity) with their error correction, under data mask ``mask``."""
    layout = _layout(version, mask)
    ecc_len = layout.ecc_len
    ecc = b"".join(
        reduce(operator.xor, map(list.__getitem__, tables, codewords[start:end]),
               0).to_bytes(ecc_len, "big")
        for start, end, tables in layout.blocks)
    placed = bytes(layout.interleave(codewords + ecc))
    remainder = layout.data_modules - 8 * len(placed)  # remainder bits are light, then masked
    bits = (int.from_bytes(placed, "big") << remainder) ^ layout.mask_bits
    # the placed bits as bytes 0/1, then the light and dark module the function
    # patterns pick from; one itemgetter lays them out in rows
    placed_bits = f"{bits:0{layout.data_modules}b}01".encode("ascii").translate(_BIT_BYTES)
    raw = bytes(layout.cells(placed_bits))
    size = layout.size
    return tuple(raw[i:i + size] for i in range(0, size * size, size))
