"""Open N event streams on a run and hold them, in a process of its own: `python -m tests.faults.stream_holder
URL TOKEN RUN_ID N`. Prints "opened N" once every stream has sent its backlog, then waits to be killed."""

from __future__ import annotations

import asyncio
import sys

import httpx


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


if __name__ == "__main__":
    asyncio.run(hold(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
