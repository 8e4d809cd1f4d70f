"""Open N event streams on a run and hold them, in a process of its own: `python -m tests.faults.stream_holder
URL TOKEN RUN_ID N`. Prints "opened N" once every stream has sent its backlog, then waits to be killed.

`quiet_followed_run` and `held_streams` set up what the tests of waiting streams share: a stopped run that pages
keep following, and a holder process around a block."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.server_process import REPO_ROOT


async def hold(url: str, token: str, run_id: int, count: int) -> None:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
    opened = 0
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def follow() -> None:
            nonlocal opened
            async with client.stream("GET", f"/api/v1/runs/{run_id}/events?follow=true") as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.startswith("id:"):
                        break  # the backlog arrived: from now on the stream only waits
                opened += 1
                if opened == count:
                    print(f"opened {opened}", flush=True)
                await asyncio.Event().wait()

        await asyncio.gather(*(follow() for _ in range(count)))


def quiet_followed_run(client: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dense model on a small circle set and a run of it stopped after its first saved epoch: pages follow it
    in case it is resumed, and it stays quiet. Returns the model and the run."""
    model = client.post("/api/v1/models", json={"starter": "dense"}).json()
    dataset = client.post("/api/v1/datasets", json={"key": "circle", "params": {"n_samples": 100}}).json()
    client.put(f"/api/v1/models/{model['id']}/dataset", json={"dataset_id": dataset["id"]})
    client.post(f"/api/v1/models/{model['id']}/dataset/fit-output")
    run = client.post(f"/api/v1/models/{model['id']}/runs", json={"epochs": 1000}).json()
    deadline = time.monotonic() + 90
    while client.get(f"/api/v1/runs/{run['id']}").json()["saved_epoch"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client.post(f"/api/v1/runs/{run['id']}/stop")
    while client.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running":
        time.sleep(0.2)
    return model, run


@contextmanager
def held_streams(url: str, token: str, run_id: int, count: int) -> Iterator[None]:
    """`count` streams following the run, held by another process (so that this one measures the server alone)
    while the block runs."""
    holder = subprocess.Popen([sys.executable, "-m", "tests.faults.stream_holder", url, token, str(run_id),
                               str(count)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == f"opened {count}"
        yield
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


if __name__ == "__main__":
    asyncio.run(hold(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
