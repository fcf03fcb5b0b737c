"""Write the zh_Hans catalog from the extracted template and scripts/zh_hans.py."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

sys.path.insert(0, str(Path(__file__).parent))
from zh_hans import ZH_HANS, ZH_HANS_PLURALS

root = Path(__file__).resolve().parents[1] / "src" / "biblioverse" / "locale"
with (root / "messages.pot").open("rb") as fh:
    catalog = read_po(fh, locale="zh_Hans")
catalog.locale = "zh_Hans"
catalog.fuzzy = False
catalog.copyright_holder = "the Biblioverse authors"
catalog.last_translator = "Biblioverse team"
catalog.language_team = "Biblioverse zh_Hans"
catalog.msgid_bugs_address = ""
missing = []
for message in catalog:
    if not message.id:
        continue
    if isinstance(message.id, tuple):
        message.string = ZH_HANS_PLURALS.get(message.id[0], ())
        if not message.string:
            missing.append(message.id[0])
    else:
        message.string = ZH_HANS.get(message.id, "")
        if not message.string:
            missing.append(message.id)
out = root / "zh_Hans" / "LC_MESSAGES" / "messages.po"
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("wb") as fh:
    write_po(fh, catalog, omit_header=False, sort_output=True, width=100)
unused = sorted(set(ZH_HANS) - {m.id for m in catalog if isinstance(m.id, str)})
if unused:
    print("no longer used (delete from scripts/zh_hans.py):", *unused, sep="\n  ")
if missing:
    print("untranslated:", *missing, sep="\n  ")
    sys.exit(1)
print(f"wrote {out}")
