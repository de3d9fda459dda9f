"""Two replicas behind Debian's nginx, sharing PostgreSQL and Redis: one is stopped and started again
under load (tests/failover.py). Nothing is lost but what a client could retry, and nothing is replayed."""

from __future__ import annotations

import pytest

from conftest import REDIS_URL
from failover import ProcessStack, run_failover

pytestmark = [pytest.mark.server, pytest.mark.nginx]


def test_a_replica_restarting_under_load_loses_no_call_no_feedback_and_admits_no_replay(own_postgres_url, redis_prefix, tmp_path):
    figures = run_failover(ProcessStack(tmp_path, own_postgres_url, REDIS_URL, redis_prefix), seconds=12, connections=6)
    summary = figures.summary()
    print(summary)  # the figures, for the run's log (pytest -s or -rA)
    assert summary["calls while replica A was stopped or starting"] > 50  # the restart happened under load
    assert summary["failed"] == 0, summary["failures"]
    assert figures.feedback_acknowledged > 50 and figures.feedback_stored == figures.feedback_acknowledged
    assert figures.replays_tried >= 10 and figures.replays_refused == figures.replays_tried
    assert figures.served_by_a_after_restart > 0  # nginx sent calls to the replica again once it was back
    # What nginx adds to a card response (docs/operations.md): under 1 ms here; a Nagle and delayed-ACK stall adds 40.
    assert figures.card_ms_added_by_nginx < 2, summary
