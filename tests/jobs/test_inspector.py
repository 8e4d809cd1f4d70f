"""The warm Keras worker behind the live summary: cached, and replaced when it dies."""

import os
import signal

import pytest

from app.core.errors import Unavailable, UserError
from app.core.starters import STARTERS
from app.jobs.inspector import Inspector
from tests.factories import stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inspector():
    worker = Inspector(timeout=60)
    worker.start()
    yield worker
    worker.stop()


def test_summary_comes_from_keras_in_another_process(inspector):
    summary = inspector.summarize(STARTERS["convnet"].graph())
    assert summary["total_params"] == 93_322
    assert inspector.pid != os.getpid()


def test_a_keras_refusal_names_the_layer(inspector):
    graph = stack(("Input", {"shape": [28, 28, 1]}), ("Flatten", {}), ("Conv2D", {}))
    with pytest.raises(UserError) as info:
        inspector.summarize(graph)
    assert info.value.layer_id == "n3"


def test_a_killed_worker_is_replaced(inspector):
    inspector.summarize(STARTERS["dense"].graph())
    old_pid = inspector.pid
    os.kill(old_pid, signal.SIGKILL)
    summary = inspector.summarize(STARTERS["regression"].graph())  # a graph not cached yet
    assert summary["total_params"] == 833
    assert inspector.pid != old_pid


def test_a_hung_worker_times_out_and_is_replaced():
    worker = Inspector(timeout=60)
    worker.start()
    try:
        worker.summarize(STARTERS["dense"].graph())
        os.kill(worker.pid, signal.SIGSTOP)  # alive but not answering
        worker.timeout = 1
        with pytest.raises(Unavailable, match="restarted"):
            worker.summarize(STARTERS["convnet"].graph())
        worker.timeout = 60
        assert worker.summarize(STARTERS["convnet"].graph())["total_params"] == 93_322
    finally:
        worker.stop()


def test_a_prefetched_summary_is_ready_for_the_request(inspector):
    graph = stack(("Input", {"shape": [12]}), ("Dense", {"units": 7}))
    inspector.prefetch(graph)
    assert inspector.summarize(graph)["total_params"] == 12 * 7 + 7  # waits for the prefetch, no second build
    assert len([k for k in inspector._cache if '"units": 7' in k]) == 1
