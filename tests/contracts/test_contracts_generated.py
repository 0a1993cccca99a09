"""contracts/ is what the code generates, byte for byte (``make contracts`` rewrites it)."""

from __future__ import annotations

from pathlib import Path

from contracts_files import CONTRACTS

from reelpolicy_contracts import export

STALE = "contracts/ is not what libs/contracts generates: run `make contracts` and commit it"


def test_contracts_are_current(tmp_path: Path) -> None:
    export.write(tmp_path)
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = {
        p.relative_to(CONTRACTS)
        for p in CONTRACTS.rglob("*")
        if p.is_file() and p.relative_to(CONTRACTS).parts[0] != "released"
    }
    assert committed == generated, f"{STALE}: files differ: {sorted(committed ^ generated)}"
    for path in sorted(generated):
        assert (CONTRACTS / path).read_bytes() == (tmp_path / path).read_bytes(), (
            f"{STALE}: {path} differs"
        )


def test_the_export_is_deterministic(tmp_path: Path) -> None:
    assert export.render() == export.render()
