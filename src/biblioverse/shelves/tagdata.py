"""What library RFID tags hold, encoded and decoded. Pure functions, no I/O.

Two families are in use:

- HF tags (ISO 15693) in the fixed-length model of ISO 28560-3 (the "Danish data model"):
  32 bytes of user memory, with the item's barcode (the primary item identifier), the set
  information (how many parts, which part), the owner library's country and ISIL, and a
  CRC-16 over the rest. A reader reports the tag's UID and this memory.
- UHF tags (EPC Gen2) whose EPC is a GS1 Global Individual Asset Identifier, GIAI-96 for
  numeric barcodes and GIAI-202 for alphanumeric ones: the company prefix names the
  consortium, the asset reference is the barcode. epcpy does the EPC Tag Data Standard
  arithmetic.

Either way the barcode is what ties a tag to a copy; `items.rfid_tag` remembers the identifier
the readers report (UID or EPC) so that a shelf read costs one lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from epcpy.epc_schemes.giai import GIAI, GIAIFilterValue
from epcpy.utils.common import ConvertException

ISO28560_LENGTH = 32
_CRC_AT = 19  # two bytes, least significant first
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


class TagFormat(StrEnum):
    ISO28560_3 = "iso28560-3"
    GIAI_96 = "giai-96"
    GIAI_202 = "giai-202"


class Usage(StrEnum):
    """ISO 28560-3 type of usage (low nibble of the first byte)."""

    ACQUISITION = "acquisition"
    CIRCULATING = "circulating"
    NOT_CIRCULATING = "not_circulating"
    DISCARDED = "discarded"
    PATRON_CARD = "patron_card"


_USAGE_CODE = {
    Usage.ACQUISITION: 0,
    Usage.CIRCULATING: 1,
    Usage.NOT_CIRCULATING: 2,
    Usage.DISCARDED: 3,
    Usage.PATRON_CARD: 8,
}
_USAGE_OF = {v: k for k, v in _USAGE_CODE.items()}


class TagDataError(ValueError):
    """Tag data that cannot be encoded or decoded; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TagContent:
    format: TagFormat
    barcode: str
    owner_isil: str | None = None  # "CN-110000-1" style: country, a hyphen, the library
    usage: Usage = Usage.CIRCULATING
    parts: int = 1  # a set of several volumes or a book with a disc
    part: int = 1
    company_prefix: str | None = None  # GIAI only
    epc_uri: str | None = None


def crc16(data: bytes) -> int:
    """CRC-16/CCITT (polynomial 0x1021, start 0xFFFF, not reflected), as ISO 28560-3 uses."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _block_crc(block: bytes) -> int:
    # over the 30 bytes around the CRC, then two zero bytes in its place at the end
    return crc16(block[:_CRC_AT] + block[_CRC_AT + 2 :] + b"\x00\x00")


def _ascii(field: str, value: str, size: int) -> bytes:
    if not value.isascii() or not value.isprintable():
        raise TagDataError(field, "letters, digits and printable ASCII only")
    raw = value.encode("ascii")
    if len(raw) > size:
        raise TagDataError(field, f"at most {size} characters")
    return raw.ljust(size, b"\x00")


def encode_iso28560_3(content: TagContent) -> bytes:
    """The 32 bytes to write into an HF tag's user memory."""
    if not content.barcode:
        raise TagDataError("barcode", "a barcode is required")
    if not 1 <= content.parts <= 255 or not 1 <= content.part <= content.parts:
        raise TagDataError("part", "part must be between 1 and the number of parts (255 at most)")
    country, library = "", ""
    if content.owner_isil:
        country, _, library = content.owner_isil.partition("-")
        if len(country) != 2 or not country.isalpha() or not library:
            raise TagDataError("owner_isil", "an ISIL is a country code, a hyphen, a library code")
    block = bytearray(ISO28560_LENGTH)
    block[0] = 0x10 | _USAGE_CODE[content.usage]  # data model version 1
    block[1] = content.parts
    block[2] = content.part
    block[3:19] = _ascii("barcode", content.barcode, 16)
    block[21:23] = _ascii("owner_isil", country.upper(), 2)
    block[23:32] = _ascii("owner_isil", library, 9)
    crc = _block_crc(bytes(block))
    block[_CRC_AT] = crc & 0xFF
    block[_CRC_AT + 1] = crc >> 8
    return bytes(block)


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace")


def decode_iso28560_3(data: bytes) -> TagContent:
    if len(data) < ISO28560_LENGTH:
        raise TagDataError("data", f"{len(data)} bytes; the fixed-length model has 32")
    block = data[:ISO28560_LENGTH]
    version = block[0] >> 4
    if version != 1:
        raise TagDataError("data", f"data model version {version}; only version 1 is known")
    stored = block[_CRC_AT] | (block[_CRC_AT + 1] << 8)
    if stored != _block_crc(block):
        raise TagDataError("crc", f"CRC {stored:04X} does not match the data")
    usage = _USAGE_OF.get(block[0] & 0x0F)
    if usage is None:
        raise TagDataError("usage", f"unknown type of usage {block[0] & 0x0F}")
    barcode = _text(block[3:19])
    if not barcode:
        raise TagDataError("barcode", "the tag holds no primary item identifier")
    country, library = _text(block[21:23]), _text(block[23:32])
    return TagContent(
        TagFormat.ISO28560_3,
        barcode,
        owner_isil=f"{country}-{library}" if country and library else None,
        usage=usage,
        parts=block[1] or 1,
        part=block[2] or 1,
    )


def encode_giai(content: TagContent, *, bits: int = 96) -> str:
    """The EPC (as upper-case hex) to write into a UHF tag's EPC memory."""
    prefix = content.company_prefix or ""
    if not prefix.isdigit() or not 6 <= len(prefix) <= 12:
        raise TagDataError("company_prefix", "a GS1 company prefix has 6 to 12 digits")
    scheme = GIAI.BinaryCodingScheme.GIAI_96 if bits == 96 else GIAI.BinaryCodingScheme.GIAI_202
    try:
        giai = GIAI(f"urn:epc:id:giai:{prefix}.{content.barcode}")
        giai.tag_uri(scheme, GIAIFilterValue.ALL_OTHERS)  # checks what fits the coding scheme
        return giai.hex(
            binary_coding_scheme=scheme, filter_value=GIAIFilterValue.ALL_OTHERS
        ).upper()
    except (ConvertException, ValueError) as exc:
        hint = "digits only, no leading zero" if bits == 96 else "too long for GIAI-202"
        raise TagDataError("barcode", f"cannot be a GIAI-{bits} asset reference ({hint})") from exc


def decode_epc(epc_hex: str) -> TagContent:
    if not epc_hex or not _HEX.match(epc_hex) or len(epc_hex) % 4:
        raise TagDataError("epc", "an EPC is a whole number of 16-bit words in hex")
    try:
        giai = GIAI.from_hex(epc_hex.upper())
    except (ConvertException, ValueError, KeyError, IndexError) as exc:
        raise TagDataError("epc", "not a GIAI-96 or GIAI-202 EPC") from exc
    _, _, body = giai.epc_uri.rpartition(":")
    prefix, _, reference = body.partition(".")
    bits = 96 if epc_hex.upper().startswith("34") else 202
    return TagContent(
        TagFormat.GIAI_96 if bits == 96 else TagFormat.GIAI_202,
        reference,
        company_prefix=prefix,
        epc_uri=giai.epc_uri,
    )


def encode(content: TagContent) -> str:
    """Hex to write on the tag, in the content's format."""
    if content.format is TagFormat.ISO28560_3:
        return encode_iso28560_3(content).hex().upper()
    return encode_giai(content, bits=96 if content.format is TagFormat.GIAI_96 else 202)


def decode(hex_data: str) -> TagContent:
    """Whatever a reader returned: 32 bytes of HF user memory or a UHF EPC."""
    text = hex_data.strip().replace(" ", "")
    if not text or not _HEX.match(text) or len(text) % 2:
        raise TagDataError("data", "hex digits, two per byte")
    if text[:2] in ("34", "38") and len(text) in (24, 52):
        return decode_epc(text)
    return decode_iso28560_3(bytes.fromhex(text))


def barcode_of(tag: str) -> str | None:
    """The barcode a tag identifier carries, if it carries one (an EPC that is a GIAI); a
    UID or an unrelated EPC carries none."""
    try:
        return decode(tag).barcode
    except TagDataError:
        return None
