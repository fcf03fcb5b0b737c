"""Build the committed demo sample from the Library of Congress file in pymarc's sdist.

    python scripts/make_loc_sample.py var/data/BooksAll.2016.part01.utf8

Takes the first 2,000 records and the first 1,000 that carry Chinese script (880 fields),
so the demo catalogue answers in English and in Chinese. Raw bytes are copied unchanged.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

from biblioverse.catalog import marcio

CJK = re.compile(r"[\u4e00-\u9fff]")
OUT = Path(__file__).resolve().parents[1] / "src/biblioverse/catalog/data/loc-sample.mrc.gz"


def main(source: str) -> None:
    plain: list[bytes] = []
    chinese: list[bytes] = []
    for read in marcio.read_iso2709(Path(source).read_bytes()):
        if read.record is None or read.raw is None:
            continue
        raw = read.raw
        if CJK.search(str(read.record)):
            if len(chinese) < 1000:
                chinese.append(raw)
        elif len(plain) < 2000:
            plain.append(raw)
        if len(plain) >= 2000 and len(chinese) >= 1000:
            break
    with gzip.open(OUT, "wb", compresslevel=9) as out:
        for raw in plain + chinese:
            out.write(raw)
    print(f"wrote {len(plain) + len(chinese)} records to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
