"""RFID tag data: ISO 28560-3 blocks and GIAI EPCs, against published vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biblioverse.shelves import tagdata as t

# libdanrfid's test block: barcode 11223344, owner DE-705, CRC 0x3E51 stored low byte first
DANISH = "11010131313232333334340000000000000000513e4445373035000000000000"


def test_crc_of_the_reference_string() -> None:
    # the check value of the Danish data model's specification
    assert t.crc16(b"RFID tag data model") == 0x1AEE


def test_a_published_block_decodes_and_encodes_back_byte_for_byte() -> None:
    content = t.decode(DANISH)
    assert content.barcode == "11223344"
    assert content.owner_isil == "DE-705"
    assert content.usage is t.Usage.CIRCULATING and (content.parts, content.part) == (1, 1)
    assert t.encode(content).lower() == DANISH


def test_a_flipped_bit_fails_the_crc() -> None:
    block = bytearray(bytes.fromhex(DANISH))
    block[5] ^= 0x01
    with pytest.raises(t.TagDataError) as err:
        t.decode(block.hex())
    assert err.value.field == "crc"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("", "data"),
        ("zz", "data"),
        ("123", "data"),
        ("1101", "data"),  # 2 bytes
        ("21" + DANISH[2:], "data"),  # version 2
    ],
)
def test_what_cannot_be_a_tag_is_named(data: str, field: str) -> None:
    with pytest.raises(t.TagDataError) as err:
        t.decode(data)
    assert err.value.field == field


def test_encoding_refuses_what_does_not_fit() -> None:
    with pytest.raises(t.TagDataError) as err:
        t.encode(t.TagContent(t.TagFormat.ISO28560_3, "X" * 17))
    assert err.value.field == "barcode"
    with pytest.raises(t.TagDataError) as err:
        t.encode(t.TagContent(t.TagFormat.ISO28560_3, "1", owner_isil="Beijing"))
    assert err.value.field == "owner_isil"
    with pytest.raises(t.TagDataError) as err:
        t.encode(t.TagContent(t.TagFormat.GIAI_96, "B-1", company_prefix="6901234"))
    assert err.value.field == "barcode"
    with pytest.raises(t.TagDataError) as err:
        t.encode(t.TagContent(t.TagFormat.GIAI_96, "1", company_prefix="69"))
    assert err.value.field == "company_prefix"


def test_giai_96_round_trip_matches_the_tag_data_standard() -> None:
    # TDS 2.x example: urn:epc:tag:giai-96:0.0614141.12345400 -> 3414257BF400000000BC6038
    content = t.TagContent(t.TagFormat.GIAI_96, "12345400", company_prefix="0614141")
    assert t.encode(content) == "3414257BF400000000BC6038"
    back = t.decode("3414257BF400000000BC6038")
    assert back.barcode == "12345400" and back.company_prefix == "0614141"
    assert t.barcode_of("3414257BF400000000BC6038") == "12345400"


def test_an_alphanumeric_barcode_goes_into_giai_202() -> None:
    content = t.TagContent(t.TagFormat.GIAI_202, "B39-0001x", company_prefix="6901234")
    epc = t.encode(content)
    assert len(epc) == 52 and t.decode(epc).barcode == "B39-0001x"


def test_a_uid_carries_no_barcode() -> None:
    assert t.barcode_of("E004015012345678") is None


@given(
    barcode=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=16
    ),
    parts=st.integers(1, 255),
    data=st.data(),
)
def test_every_block_we_write_reads_back(barcode: str, parts: int, data: st.DataObject) -> None:
    part = data.draw(st.integers(1, parts))
    content = t.TagContent(
        t.TagFormat.ISO28560_3, barcode, owner_isil="CN-110000-1", parts=parts, part=part
    )
    assert t.decode(t.encode(content)) == content
