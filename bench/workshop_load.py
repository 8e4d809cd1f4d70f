"""A workshop room on one machine: many participants editing, training and watching at once.

Run from the repository root: `.venv/bin/python bench/workshop_load.py` (60 participants,
3 minutes), or `--participants 200 --minutes 2` to see where it breaks first.

It starts the server as the README does (the `layerlab` command) on a fresh data folder
and simulates participants, each in a browser session of its own:
- it creates a model from the home page (a browser's form post, CSRF token included) and
  attaches a small generated dataset;
- every 2 seconds it edits a layer as the editor page does (an htmx POST that returns the
  editor's fragments with Keras' summary), timing each edit;
- about once a minute it starts a short run and follows it on its event stream, as the
  run page does, noting when each epoch event arrives.
First, with the server otherwise idle, one participant makes the same edits: that
unloaded figure, taken in the same run, is what the loaded one is compared with, since
these machines are shared and noisy.

It prints edit latency (p50, p95, p99), errors by status, event delivery delay from an
epoch's end (its wall time, written by the worker) to each stream (p50, p95), events
dropped or duplicated (a stream that misses an epoch or sees an id twice), and the
server's memory and open connections. The last line is one JSON object.
Targets: edit p95 under 250 ms and at most 3x the unloaded p95, no 5xx, no dropped
events, event delay p95 under 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.live_server import free_port, start_server, stop

EDIT_EVERY_S = 2.0
RUN_EVERY_S = 60.0
RUN_SETTINGS = {"t.epochs": "3", "t.batch_size": "16"}
PANEL_KEY = re.compile(r'data-panel-key="([0-9a-f]+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
HTMX = {"HX-Request": "true"}


@dataclass
class Tally:
    edit_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    event_delay_s: list[float] = field(default_factory=list)
    dropped: int = 0
    duplicated: int = 0
    runs_started: int = 0
    runs_followed: int = 0
    refused_runs: Counter[int] = field(default_factory=Counter)


class Participant:
    def __init__(self, number: int, url: str, tally: Tally):
        self.number, self.url, self.tally = number, url, tally
        self.client = httpx.AsyncClient(base_url=url, timeout=120, headers={"Origin": url})
        self.editor = ""
        self.units = 20 + number  # each participant's edits walk through their own values
        self.panel_key = ""

    async def join(self) -> None:
        created = await self.client.post("/models", data={"starter": "dense"}, follow_redirects=False)
        self.editor = created.headers["location"]
        page = await self.client.get(self.editor)
        token = CSRF.search(page.text)
        self.client.headers["X-CSRF-Token"] = token.group(1) if token else ""
        attached = await self.client.post(f"{self.editor}/dataset", headers=HTMX,
                                          data={"dataset": "builtin:circle", "d.n_samples": "200"})
        attached.raise_for_status()
        fitted = await self.client.post(f"{self.editor}/dataset/fit-output", headers=HTMX)
        self.remember_panel(fitted.text)

    def remember_panel(self, html: str) -> None:
        """Keep the training panel's key, which app.js sends with every edit, as a browser page would."""
        found = PANEL_KEY.search(html)
        if found:
            self.panel_key = found.group(1)

    async def edit(self) -> None:
        self.units = self.units + 1 if self.units < 200 else 20
        began = time.perf_counter()
        try:
            response = await self.client.post(f"{self.editor}/layers/n3", headers=HTMX,
                                              data={"p.units": str(self.units), "panel_key": self.panel_key})
        except httpx.HTTPError:
            self.tally.statuses[599] += 1  # the connection failed: counted with the server errors
            return
        self.tally.edit_s.append(time.perf_counter() - began)
        self.tally.statuses[response.status_code] += 1
        self.remember_panel(response.text)

    async def edit_loop(self, until: float) -> None:
        await asyncio.sleep(random.uniform(0, EDIT_EVERY_S))  # participants do not click in step
        while time.monotonic() < until:
            began = time.monotonic()
            await self.edit()
            await asyncio.sleep(max(0.0, EDIT_EVERY_S - (time.monotonic() - began)))

    async def train_loop(self, until: float) -> None:
        await asyncio.sleep(random.uniform(0, RUN_EVERY_S))
        while time.monotonic() < until:
            began = time.monotonic()
            try:
                started = await self.client.post(f"{self.editor}/runs", headers=HTMX, data=RUN_SETTINGS)
            except httpx.HTTPError:
                self.tally.statuses[599] += 1
                await asyncio.sleep(RUN_EVERY_S)
                continue
            self.tally.statuses[started.status_code] += 1
            if started.status_code == 204:
                self.tally.runs_started += 1
                run_id = int(started.headers["HX-Redirect"].rsplit("/", 1)[1])
                await self.follow(run_id, until + 120)
            else:
                self.tally.refused_runs[started.status_code] += 1
            await asyncio.sleep(max(0.0, RUN_EVERY_S - (time.monotonic() - began)))

    async def follow(self, run_id: int, deadline: float) -> None:
        """Read the run's stream from its start, as a run page does; check every epoch arrives once."""
        seen: set[int] = set()
        epochs: set[int] = set()
        try:
            async with self.client.stream("GET", f"/api/v1/runs/{run_id}/events") as response:
                self.tally.statuses[response.status_code] += 1
                kind, event_id = "", 0
                async for line in response.aiter_lines():
                    if line.startswith("id:"):
                        event_id = int(line[3:])
                        if event_id in seen:
                            self.tally.duplicated += 1
                        seen.add(event_id)
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "epoch":
                        data = json.loads(line[5:])
                        epochs.add(int(data["epoch"]))
                        if "time" in data:
                            self.tally.event_delay_s.append(max(0.0, time.time() - float(data["time"])))
                    if time.monotonic() > deadline:
                        break
        except httpx.HTTPError:
            self.tally.statuses[599] += 1  # the connection failed
            return
        run = (await self.client.get(f"/api/v1/runs/{run_id}")).json()
        self.tally.dropped += max(0, run.get("epochs_done", 0) - len(epochs))
        self.tally.runs_followed += 1

    async def close(self) -> None:
        await self.client.aclose()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def unloaded_edits(url: str, count: int) -> list[float]:
    tally = Tally()
    alone = Participant(0, url, tally)
    await alone.join()
    for _ in range(5):
        await alone.edit()  # warm up
    tally.edit_s.clear()
    for _ in range(count):
        await alone.edit()
    await alone.close()
    return tally.edit_s


async def room(url: str, participants: int, seconds: float, server: psutil.Process) -> tuple[Tally, dict]:
    tally = Tally()
    people = [Participant(n + 1, url, tally) for n in range(participants)]
    for chunk in range(0, participants, 10):  # people arrive over a few seconds
        await asyncio.gather(*(p.join() for p in people[chunk:chunk + 10]))
    until = time.monotonic() + seconds
    peak = {"rss_mb": 0.0, "connections": 0}

    async def watch() -> None:
        while time.monotonic() < until:
            rss = server.memory_info().rss / 2**20
            connections = len(server.net_connections(kind="tcp"))
            peak["rss_mb"], peak["connections"] = max(peak["rss_mb"], rss), max(peak["connections"], connections)
            await asyncio.sleep(1.0)

    await asyncio.gather(watch(), *(p.edit_loop(until) for p in people), *(p.train_loop(until) for p in people))
    for person in people:
        await person.close()
    return tally, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    random.seed(7)
    data_dir, port = tempfile.mkdtemp(prefix="layerlab-load-"), free_port()
    url = f"http://127.0.0.1:{port}"
    proc, startup_s = start_server(data_dir, port, extra_env={"LAYERLAB_WORKSPACES_PER_HOUR": "100000"})
    try:
        server = psutil.Process(proc.pid)
        unloaded = asyncio.run(unloaded_edits(url, 60))
        me, began = psutil.Process(), time.monotonic()
        own_cpu = sum(me.cpu_times()[:2])
        tally, peak = asyncio.run(room(url, args.participants, args.minutes * 60, server))
        # The participants' "browsers" share this machine's cores with the server: say how much they took.
        client_cores = (sum(me.cpu_times()[:2]) - own_cpu) / (time.monotonic() - began)
    finally:
        stop(proc)
    errors_5xx = sum(n for status, n in tally.statuses.items() if status >= 500)
    report = {
        "participants": args.participants, "minutes": args.minutes, "cpus": psutil.cpu_count(),
        "startup_s": round(startup_s, 2), "edits": len(tally.edit_s),
        "edit_p50_ms": round(1000 * percentile(tally.edit_s, 0.50), 1),
        "edit_p95_ms": round(1000 * percentile(tally.edit_s, 0.95), 1),
        "edit_p99_ms": round(1000 * percentile(tally.edit_s, 0.99), 1),
        "unloaded_edit_p50_ms": round(1000 * percentile(unloaded, 0.50), 1),
        "unloaded_edit_p95_ms": round(1000 * percentile(unloaded, 0.95), 1),
        "statuses": dict(sorted(tally.statuses.items())), "errors_5xx": errors_5xx,
        "runs_started": tally.runs_started, "runs_followed": tally.runs_followed,
        "runs_refused": dict(tally.refused_runs),
        "epoch_events": len(tally.event_delay_s),
        "event_delay_p50_ms": round(1000 * percentile(tally.event_delay_s, 0.50), 1),
        "event_delay_p95_ms": round(1000 * percentile(tally.event_delay_s, 0.95), 1),
        "dropped_events": tally.dropped, "duplicated_events": tally.duplicated,
        "server_rss_mb": round(peak["rss_mb"], 1), "server_connections_peak": peak["connections"],
        "load_generator_cores": round(client_cores, 2),
    }
    report["edit_p95_ratio"] = round(report["edit_p95_ms"] / report["unloaded_edit_p95_ms"], 2)
    targets = {
        "edit p95 under 250 ms": report["edit_p95_ms"] < 250,
        "edit p95 at most 3x unloaded": report["edit_p95_ratio"] <= 3,
        "no 5xx": errors_5xx == 0,
        "no dropped events": tally.dropped == 0 and tally.duplicated == 0,
        "event delay p95 under 500 ms": report["event_delay_p95_ms"] < 500,
    }
    report["targets_met"] = all(targets.values())
    print(f"{args.participants} participants for {args.minutes:g} min on {report['cpus']} CPUs")
    print(f"  edits: {report['edits']}; p50/p95/p99 {report['edit_p50_ms']}/{report['edit_p95_ms']}/"
          f"{report['edit_p99_ms']} ms; unloaded p50/p95 {report['unloaded_edit_p50_ms']}/"
          f"{report['unloaded_edit_p95_ms']} ms; ratio (p95) {report['edit_p95_ratio']}")
    print(f"  statuses: {report['statuses']}")
    print(f"  runs: {tally.runs_started} started, {tally.runs_followed} followed to the end, refused "
          f"{dict(tally.refused_runs)}; epoch events {len(tally.event_delay_s)}, delay p50/p95 "
          f"{report['event_delay_p50_ms']}/{report['event_delay_p95_ms']} ms; dropped {tally.dropped}, "
          f"duplicated {tally.duplicated}")
    print(f"  server: {report['server_rss_mb']} MB resident (web process), {report['server_connections_peak']} "
          f"connections at most; the simulated browsers took {client_cores:.2f} of the {report['cpus']} cores")
    for target, met in targets.items():
        print(f"  [{'ok' if met else 'MISS'}] {target}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
