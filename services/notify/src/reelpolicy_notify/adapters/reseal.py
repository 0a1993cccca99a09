"""Re-seal every stored webhook signing secret under the ring's sealing key.

The step of a key rotation between "new key first in the ring" and "old key dropped"
(``deploy/runbook.md``). Subscriptions are read in batches in id order; a batch is
re-sealed in one statement that changes a row only if its sealed values are still the
ones read, so a secret rotated through the API meanwhile is left alone (it was sealed
under the new key already). Running it again finds nothing to do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg

from reelpolicy_notify.adapters.secret_box import SecretBox, SecretBoxError


@dataclass
class ResealReport:
    examined: int = 0
    resealed: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0
    failed: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    """Subscriptions whose secret does not open, with the reason (left as they are)."""


def _resealed(box: SecretBox, sealed: str | None) -> str | None:
    if sealed is None or box.is_current(sealed):
        return sealed
    return box.seal(box.open(sealed))


async def reseal_secrets(
    pool: asyncpg.Pool, *, box: SecretBox, batch_size: int = 500
) -> ResealReport:
    report = ResealReport()
    after: uuid.UUID | None = None
    while rows := await pool.fetch(
        "SELECT id, secret_sealed, previous_secret_sealed FROM subscriptions"
        " WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
        after,
        batch_size,
    ):
        after = rows[-1]["id"]
        report.examined += len(rows)
        updates: list[tuple[uuid.UUID, str, str | None, str | None, str | None]] = []
        for row in rows:
            current, previous = row["secret_sealed"], row["previous_secret_sealed"]
            try:
                new_current = _resealed(box, current)
                new_previous = _resealed(box, previous)
            except SecretBoxError as exc:
                report.failed.append((row["id"], str(exc)))
                continue
            if (new_current, new_previous) == (current, previous):
                report.already_current += 1
            else:
                updates.append((row["id"], current, previous, new_current, new_previous))
        if not updates:
            continue
        changed = await pool.fetch(
            """UPDATE subscriptions AS s
                  SET secret_sealed = u.new_current, previous_secret_sealed = u.new_previous
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                      AS u(id, old_current, old_previous, new_current, new_previous)
                WHERE s.id = u.id AND s.secret_sealed = u.old_current
                  AND s.previous_secret_sealed IS NOT DISTINCT FROM u.old_previous
            RETURNING s.id""",
            *(list(column) for column in zip(*updates, strict=True)),
        )
        report.resealed += len(changed)
        report.changed_meanwhile += len(updates) - len(changed)
    return report
