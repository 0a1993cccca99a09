"""The chaos run, shortened for ``make test``: a fixed seed, 100 seconds of load with
service kills, connection cuts and black holes, and a database outage (``make chaos``
runs longer ones with other seeds). It runs :func:`run.chaos_run` and asserts what
``make chaos`` asserts, printing the same lines."""

from __future__ import annotations

import pytest
from run import chaos_run

pytestmark = pytest.mark.chaos

SEED = 1  # kills early; the database down from 53 s for 34 s; kills again after it
MINUTES = 100 / 60


@pytest.mark.timeout(600)
def test_nothing_is_lost_or_repeated_while_processes_die_and_connections_drop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Logs go to a directory of their own (printed), not pytest's tmp_path: pytest
    # sessions running beside this one prune older base temp directories.
    with capsys.disabled():
        print()
        result = chaos_run(seed=SEED, minutes=MINUTES, say=lambda s: print(s, flush=True))
    report = result.report
    assert report.eligibility_events_lost == 0, report.mismatches
    assert report.duplicate_alerts == 0, report.mismatches
    assert report.dlq_records == 0, report.mismatches
    assert report.quarantined_outbox_rows == 0, report.mismatches
    assert report.eligibility_in_rules == report.eligibility_expected, report.mismatches
    assert report.alerts_delivered == report.alerts_expected, report.mismatches
    assert result.failures() == [], f"{result.failures()}; logs in {result.log_dir}"
