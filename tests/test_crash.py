"""kill -9 under concurrent writes with appendfsync always: nothing
acknowledged is lost, nothing unsent appears (see tests/crash_harness.py;
`make crash-test` runs many more trials)."""

from __future__ import annotations

import random

import pytest

from tests.crash_harness import run_trial


@pytest.mark.parametrize("seed", range(5))
def test_kill_9_loses_no_acknowledged_write(tmp_path, seed):
    result = run_trial(tmp_path, random.Random(seed), writers=8, max_run_s=0.6)
    assert result["acknowledged"] > 0, "the server was killed before any write: the trial proved nothing"


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_during_log_rewrites_loses_nothing(tmp_path, seed):
    result = run_trial(tmp_path, random.Random(100 + seed), writers=6, max_run_s=0.6, rewrite=True)
    assert result["acknowledged"] > 0
    assert result["rewrites"] > 0, "no rewrite started before the kill: the trial proved nothing"


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_in_a_stream_of_transactions_leaves_each_whole_or_absent(tmp_path, seed):
    result = run_trial(tmp_path, random.Random(200 + seed), writers=6, max_run_s=0.6, transactions=True)
    assert result["transactions"] > 0, "no transaction acknowledged before the kill: the trial proved nothing"


@pytest.mark.parametrize("seed", range(2))
def test_kill_9_while_lists_hashes_sets_zsets_and_bitmaps_grow_loses_no_acknowledged_element(tmp_path, seed):
    result = run_trial(tmp_path, random.Random(300 + seed), writers=6, max_run_s=0.6, rewrite=True, types=True)
    assert result["acknowledged"] > 0 and result["rewrites"] > 0


@pytest.mark.parametrize("seed", range(3))
def test_kill_9_under_pipelined_writes_loses_no_acknowledged_write(tmp_path, seed):
    # The pipelined SETs run as one batch with one log append each.
    result = run_trial(tmp_path, random.Random(400 + seed), writers=6, max_run_s=0.6, pipelines=True)
    assert result["acknowledged"] > 0
