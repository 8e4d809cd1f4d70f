"""Variant searches run by LayerLab's own job queue: each trial is an ordinary run of the model.

The driver is woken when a run ends (the scheduler calls it), when a search is created,
stopped or resumed, and at start-up. Each time it records the trials that ended, proposes
new ones (the next grid point, or Optuna's TPE sampler asked with every result so far),
and queues as many as the workspace has room for, leaving one run slot for the learner.
Optuna's study is rebuilt from the database each time, so a restart loses nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.core.errors import Conflict, LimitReached, NotFound, UserError
from app.core.graph import Graph
from app.core.runs import ENDED_STATES, RunState, best_of
from app.core.search import AXES, SearchSpec, parse_spec, rank, trial_changes
from app.core.training import TrainConfig, check_training
from app.core.validation import validate
from app.jobs.scheduler import Scheduler
from app.services import datasets, storage
from app.services.improving import apply_changes
from app.services.training import next_run_settings, queue_runs
from app.store import repository, runs
from app.store.tables import ModelRecord, RunRecord, SearchRecord, SearchTrial, is_possible_id, utcnow

log = logging.getLogger(__name__)

RUNNING, COMPLETED, CANCELLED, INTERRUPTED = "running", "completed", "cancelled", "interrupted"
WAITING = "waiting"  # a trial proposed but not yet queued as a run
MAX_PROPOSALS = 20   # Optuna asks before concluding that every combination has been tried


def spec_of(search: SearchRecord) -> SearchSpec:
    data = json.loads(search.spec_json)
    return SearchSpec(data["axes"], data["runs"], data["epochs"], data["strategy"], data["metric"])


def get_search(session: Session, workspace_id: str, search_id: int) -> SearchRecord:
    search = session.get(SearchRecord, search_id) if is_possible_id(search_id) else None
    if search is None or search.workspace_id != workspace_id:
        raise NotFound(f"There is no search {search_id} in this workspace.")
    return search


def trials_of(session: Session, search_id: int) -> list[SearchTrial]:
    return list(session.scalars(select(SearchTrial).where(SearchTrial.search_id == search_id)
                                .order_by(SearchTrial.number)))


def trial_label(params: dict[str, Any]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {value:g}" if isinstance(value, float) else f"{name} {value}"
                     for name, value in params.items())


class SearchDriver:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings, scheduler: Scheduler):
        self.sessions, self.settings, self.scheduler = sessions, settings, scheduler
        self._lock = threading.RLock()

    # --- commands --------------------------------------------------------------------

    def create(self, session: Session, workspace_id: str, model: ModelRecord, body: dict[str, Any]) -> SearchRecord:
        """Check the request, record the search and queue its first trials."""
        graph = repository.load_graph(model)
        spec = parse_spec(body, graph, self.settings.max_search_runs)
        dataset = datasets.attached_dataset(session, model)
        if dataset is None:
            raise UserError("Choose a dataset for this model before searching its variants.", field="dataset")
        report = validate(graph, self.settings.limits)
        if not report.ok:
            raise report.errors[0].as_error("Fix the model first: ")
        meta = datasets.meta_of(dataset)
        base, _ = next_run_settings(session, model, meta, graph, report)
        config = TrainConfig.from_values({**base, **(body.get("settings") or {}), "epochs": spec.epochs})
        errors = [i for i in check_training(graph, meta, config, report) if i.severity == "error"]
        if errors:
            raise errors[0].as_error(others=errors)
        if config.target == "input" and "accuracy" in spec.metric:
            raise UserError(f"This model learns to give back its input (training target: input), so its runs have no "
                            f"{spec.metric} to rank them by. Choose the metric val_loss or loss.", field="metric")
        if session.scalar(select(SearchRecord.id).where(SearchRecord.workspace_id == workspace_id,
                                                        SearchRecord.state == RUNNING).limit(1)):
            raise Conflict("A search of this workspace is still running: stop it or wait for it to finish first.")
        kept = runs.count_runs(session, workspace_id)
        if kept + spec.runs > self.settings.max_runs_per_workspace:
            raise Conflict(f"This workspace keeps {kept} runs, and may keep {self.settings.max_runs_per_workspace} "
                           f"(LAYERLAB_MAX_RUNS_PER_WORKSPACE): a search of {spec.runs} runs does not fit. Delete "
                           "runs you no longer need, or lower budget.runs.", field="budget.runs")
        storage.check_quota(session, self.settings, workspace_id)
        search = SearchRecord(workspace_id=workspace_id, model_id=model.id, model_name=model.name,
                              graph_json=model.graph_json, config_json=json.dumps(config.get_config()),
                              dataset_id=dataset.id, state=RUNNING,
                              spec_json=json.dumps({"axes": spec.axes, "runs": spec.runs, "epochs": spec.epochs,
                                                    "strategy": spec.strategy, "metric": spec.metric}))
        session.add(search)
        session.commit()
        self.advance(search.id)
        session.refresh(search)
        return search

    def stop(self, session: Session, search: SearchRecord) -> None:
        """Cancel the trials not yet finished (their finished epochs are kept) and end the search."""
        if search.state != RUNNING:
            raise Conflict(f"Search {search.id} is {search.state}; only a running search can be stopped.")
        with self._lock:
            search.state, search.reason, search.finished_at = CANCELLED, "Stopped on request.", utcnow()
            for trial in trials_of(session, search.id):
                if trial.state == WAITING:
                    trial.state, trial.reason = RunState.CANCELLED, "The search was stopped before it started."
            session.commit()
            active = [t.run_id for t in trials_of(session, search.id) if t.run_id is not None]
        for run_id in active:
            run = session.get(RunRecord, run_id)
            if run is not None and RunState(run.state).active:
                try:
                    self.scheduler.stop(run_id)
                except Conflict:
                    pass  # it ended in the meantime
        self.advance(search.id)

    def resume(self, session: Session, search: SearchRecord) -> None:
        """Continue an interrupted search: its interrupted trials resume from their last saved epoch."""
        if search.state != INTERRUPTED:
            raise Conflict(f"Search {search.id} is {search.state}; only an interrupted search can be resumed.")
        search.state, search.reason, search.finished_at = RUNNING, None, None
        session.commit()
        for trial in trials_of(session, search.id):
            run = session.get(RunRecord, trial.run_id) if trial.run_id is not None else None
            if run is not None and run.state == RunState.INTERRUPTED:
                try:
                    self.scheduler.resume(run.id)
                except Conflict:  # nothing was saved: this trial ends as it is
                    trial.state, trial.reason = RunState.INTERRUPTED, run.reason
        session.commit()
        self.advance(search.id)

    def recover(self) -> None:
        """At start-up: searches whose trials the restart interrupted wait to be resumed; others go on."""
        with self.sessions() as session:
            running = list(session.scalars(select(SearchRecord).where(SearchRecord.state == RUNNING)))
            for search in running:
                interrupted = [t for t in trials_of(session, search.id) if t.run_id is not None
                               and (run := session.get(RunRecord, t.run_id)) is not None
                               and run.state == RunState.INTERRUPTED and t.state not in ENDED_STATES]
                if interrupted:
                    search.state = INTERRUPTED
                    search.reason = (f"The server restarted while {len(interrupted)} of its trials trained. Resume "
                                     "the search to continue them from their last saved epoch.")
            session.commit()
            ids = [s.id for s in running if s.state == RUNNING]
        for search_id in ids:
            self.advance(search_id)

    def run_ended(self, run_id: int) -> None:
        """The scheduler's call when any run ends: wake the search it belongs to, if any."""
        with self.sessions() as session:
            search_id = session.scalar(select(SearchTrial.search_id).where(SearchTrial.run_id == run_id))
        if search_id is not None:
            self.advance(search_id)

    # --- the loop --------------------------------------------------------------------

    def advance(self, search_id: int) -> None:
        """Record ended trials, propose and queue new ones while there is room, and end the search when done."""
        try:
            with self._lock, self.sessions() as session:
                search = session.get(SearchRecord, search_id)
                if search is None:
                    return
                spec = spec_of(search)
                self._record_ended(session, search, spec)
                if search.state == RUNNING:
                    self._queue_trials(session, search, spec)
                    self._finish_if_done(session, search, spec)
                session.commit()
        except Exception:  # a search must never take the scheduler's thread down with it
            log.exception("advancing search %s failed", search_id)

    def _record_ended(self, session: Session, search: SearchRecord, spec: SearchSpec) -> None:
        for trial in trials_of(session, search.id):
            if trial.run_id is None or trial.state in ENDED_STATES:
                continue
            run = session.get(RunRecord, trial.run_id)
            if run is None:
                trial.state, trial.reason = RunState.CANCELLED, "Its run was deleted."
                continue
            trial.state = run.state
            if RunState(run.state) in ENDED_STATES:
                trial.reason = run.reason
                epochs = runs.history(session, run.id, with_batches=False)["epochs"]
                best = best_of(epochs, spec.metric) if run.state == RunState.COMPLETED else None
                trial.value = best[0] if best else None
        session.flush()

    def _room(self, session: Session, workspace_id: str) -> int:
        """Runs this search may queue now: the workspace's limit less one slot kept for the learner."""
        limit = self.settings.max_active_runs_per_workspace
        allowed = limit - 1 if limit > 1 else limit
        return max(0, allowed - runs.active_runs(session, workspace_id))

    def _queue_trials(self, session: Session, search: SearchRecord, spec: SearchSpec) -> None:
        room = self._room(session, search.workspace_id)
        while room > 0:
            trials = trials_of(session, search.id)
            trial = next((t for t in trials if t.state == WAITING), None)
            if trial is None:
                if len(trials) >= spec.runs:
                    return
                params = self._propose(spec, trials)
                if params is None:
                    return  # every combination has been tried
                trial = SearchTrial(search_id=search.id, number=len(trials) + 1, params_json=json.dumps(params),
                                    state=WAITING)
                session.add(trial)
                session.flush()
            try:
                self._queue(session, search, spec, trial)
            except LimitReached:
                return  # the server's queue is full: the next run that ends wakes the search again
            except UserError as exc:
                trial.state, trial.reason = RunState.FAILED, exc.message
                continue
            room -= 1

    def _queue(self, session: Session, search: SearchRecord, spec: SearchSpec, trial: SearchTrial) -> None:
        params = json.loads(trial.params_json)
        base = Graph.model_validate_json(search.graph_json)
        base_config = json.loads(search.config_json)
        graph, overrides = apply_changes(base, trial_changes(base, base_config, params))
        report = validate(graph, self.settings.limits)
        if not report.ok:
            raise report.errors[0].as_error("This variant does not build: ")
        dataset = datasets.ready_dataset(session, search.dataset_id)
        if dataset is None:
            raise UserError("The search's dataset was deleted.")
        config = TrainConfig.from_values({**base_config, **overrides})
        errors = [i for i in check_training(graph, datasets.meta_of(dataset), config, report) if i.severity == "error"]
        if errors:
            raise errors[0].as_error()
        [run] = queue_runs(session, self.settings, self.scheduler, search.workspace_id, model_id=search.model_id,
                           model_name=search.model_name, graph_json=graph.model_dump_json(), dataset=dataset,
                           configs=[config.get_config()], params=report.total_params)
        run.name = f"{search.model_name} · search {search.id} trial {trial.number}: {trial_label(params)}"[:80]
        trial.run_id, trial.state = run.id, run.state
        session.commit()

    def _propose(self, spec: SearchSpec, trials: list[SearchTrial]) -> dict[str, Any] | None:
        tried = [json.loads(t.params_json) for t in trials]
        if spec.strategy == "grid":
            return next((p for p in spec.grid() if p not in tried), None)
        return _ask_optuna(spec, trials, tried)

    def _finish_if_done(self, session: Session, search: SearchRecord, spec: SearchSpec) -> None:
        trials = trials_of(session, search.id)
        if any(t.state not in ENDED_STATES for t in trials):  # waiting, queued or running
            return
        if len(trials) >= spec.runs or self._propose(spec, trials) is None:  # budget spent, or nothing left
            search.state, search.finished_at = COMPLETED, utcnow()
            finished = sum(1 for t in trials if t.value is not None)
            search.reason = f"All {len(trials)} trials ended; {finished} with a {spec.metric}."


def _ask_optuna(spec: SearchSpec, trials: list[SearchTrial], tried: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Optuna's next proposal (TPE), told every ended trial first; None when it only repeats tried points."""
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {name: CategoricalDistribution(values)
                                                  for name, values in spec.axes.items()}
    sampler = optuna.samplers.TPESampler(seed=len(trials), n_startup_trials=min(4, max(1, spec.runs // 3)))
    study = optuna.create_study(direction="maximize" if spec.maximize else "minimize", sampler=sampler)
    for trial, params in zip(trials, tried, strict=True):
        if trial.value is not None:
            study.add_trial(create_trial(params=params, distributions=distributions, value=trial.value))
        elif trial.state in ENDED_STATES:
            study.add_trial(create_trial(params=params, distributions=distributions, state=TrialState.FAIL))
    for _ in range(MAX_PROPOSALS):
        asked = study.ask(distributions)
        if asked.params not in tried:
            return dict(asked.params)
        study.tell(asked, state=TrialState.FAIL)  # already tried: ask again
    return None


def search_out(session: Session, search: SearchRecord) -> dict[str, Any]:
    """A search with its trials (live states), the ranking by its metric and the best trial."""
    spec = spec_of(search)
    trials = []
    for trial in trials_of(session, search.id):
        run = session.get(RunRecord, trial.run_id) if trial.run_id is not None else None
        trials.append({"number": trial.number, "params": json.loads(trial.params_json), "run_id": trial.run_id,
                       "state": run.state if run is not None else trial.state, "reason": trial.reason,
                       "value": trial.value, "params_count": run.params if run is not None else None,
                       "run_name": run.name if run is not None else None})
    ranking = rank(trials, spec.maximize)
    return {"id": search.id, "state": search.state, "reason": search.reason, "model_id": search.model_id,
            "model_name": search.model_name, "dataset_id": search.dataset_id,
            "axes": spec.axes, "budget": {"runs": spec.runs, "epochs": spec.epochs}, "strategy": spec.strategy,
            "metric": spec.metric, "maximize": spec.maximize, "trials": trials,
            "planned": min(spec.runs, spec.grid_size) if spec.strategy == "grid" else spec.runs,
            "ranking": [t["number"] for t in ranking], "best": ranking[0] if ranking else None,
            "created_at": search.created_at, "finished_at": search.finished_at,
            "axis_help": {name: AXES[name].help for name in spec.axes}}


def list_searches(session: Session, workspace_id: str, model_id: int | None = None) -> list[SearchRecord]:
    query = select(SearchRecord).where(SearchRecord.workspace_id == workspace_id)
    if model_id is not None:
        query = query.where(SearchRecord.model_id == model_id)
    return list(session.scalars(query.order_by(SearchRecord.id.desc())))
