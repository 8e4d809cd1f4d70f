"""Settings, read from environment variables prefixed LAYERLAB_.

Each setting's description is its documentation: the README's table is checked
against these by a test, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.internals import DEFAULT_HISTOGRAM_BINS
from app.core.passwords import MIN_PASSWORD_CHARS, is_password_hash
from app.core.validation import Limits
from app.data.keras_cache import ORIGIN


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAYERLAB_", extra="ignore")

    mode: Literal["personal", "workshop"] = Field("personal", description="`personal`: one anonymous "
                                                  "workspace per browser. `workshop`: participants join an "
                                                  "instructor's workshop with its code; nothing is reachable "
                                                  "without joining or the instructor's password.")
    instructor_password: str = Field("", description="The instructor's password (at least 12 characters); "
                                     "required in workshop mode unless its hash is given instead.")
    instructor_password_hash: str = Field("", description="The instructor's password as made by "
                                          "`layerlab hash-password` (`scrypt$...`), to keep the password "
                                          "itself out of the environment.")
    join_attempts_per_minute: int = Field(10, ge=1, description="Wrong join codes and PINs one client "
                                          "address may send in a minute, and apart from them wrong instructor "
                                          "passwords (guessing is slowed down to this).")
    data_dir: Path = Field(Path("data"), description="Directory for the SQLite database, the "
                           "generated secret key, prepared datasets and trained models.")
    dataset_cache_dir: Path | None = Field(None, description="Where downloaded built-in datasets "
                                           "(MNIST, Fashion-MNIST) are kept. Empty: `dataset-cache` in the "
                                           "data directory.")
    dataset_mirror: str = Field(ORIGIN, description="Where MNIST and Fashion-MNIST are downloaded from "
                                "when they are not in the dataset cache (a folder URL holding Keras' files).")
    database_url: str = Field("", description="SQLAlchemy database URL. Empty: a SQLite file "
                              "`layerlab.db` in the data directory.")
    database_pool_size: int = Field(10, ge=1, le=1000, description="Database connections the server keeps "
                                    "open (up to as many again when busy). Requests hold one only while they "
                                    "run a query; event streams hold none while they wait.")
    database_timeout: float = Field(5.0, gt=0, description="Seconds a request waits for a busy (locked) "
                                    "database before it answers 503 with nothing changed.")
    secret_key: str = Field("", description="Key that signs workspace cookies. Empty: a random "
                            "key is generated once and kept in the data directory.")
    host: str = Field("127.0.0.1", description="Address the `layerlab` command listens on; "
                      "`0.0.0.0` for a room of participants (only when told: the default stays local).")
    port: int = Field(8000, description="Port the `layerlab` command listens on.")
    secure_cookies: bool = Field(False, description="Mark cookies Secure (set when served over HTTPS).")
    session_days: float = Field(30, gt=0, description="Days a browser session or an API token stays valid "
                                "after its last use; then it ends, and the browser starts afresh.")
    workspaces_per_hour: int = Field(20, ge=1, description="New workspaces (first visits that store something, "
                                     "and POST /api/v1/workspaces) one client address may create in an hour.")
    max_params: int = Field(20_000_000, ge=1, description="Largest number of parameters a model may have.")
    max_activation_values: int = Field(20_000_000, ge=1, description="Largest number of "
                                       "intermediate values one sample may produce, summed over layers.")
    max_streams_per_session: int = Field(8, ge=1, description="Live event streams (pages showing a run) one "
                                         "browser session or token may keep open at once.")
    max_models_per_workspace: int = Field(200, ge=1, description="How many models one workspace may hold.")
    max_datasets_per_workspace: int = Field(100, ge=1, description="How many datasets (built-in choices and "
                                            "uploads) one workspace may hold.")
    undo_depth: int = Field(100, ge=1, description="How many edits of each model can be undone.")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest upload accepted, in "
                                  "bytes; larger ones are refused while they arrive.")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest request body accepted for "
                                "anything but an upload (JSON, forms), in bytes.")
    max_running_runs: int = Field(0, ge=0, description="Training runs that may run at once on this "
                                  "server. 0: one per CPU core.")
    max_running_runs_per_workspace: int = Field(1, ge=1, description="Training runs one workspace may "
                                                "have running at once; the rest wait in the queue.")
    max_runs_per_workspace: int = Field(300, ge=1, description="Runs one workspace may keep; beyond, new "
                                        "runs are refused until the user deletes old ones (nothing is "
                                        "deleted on its own).")
    workspace_quota_bytes: int = Field(2 * 1024**3, ge=1024**2, description="Disk space one workspace's "
                                       "uploads, prepared datasets and runs may take, in bytes.")
    max_queued_runs: int = Field(200, ge=1, description="Runs that may wait in the server's queue, all "
                                 "workspaces together; beyond, new runs get 429 with a time to try again.")
    max_active_runs_per_workspace: int = Field(5, ge=1, description="Runs one workspace may have queued "
                                               "or running; more are refused until one ends.")
    max_search_runs: int = Field(24, ge=1, le=1000, description="Runs one variant search may train at most "
                                 "(its budget); its trials also count towards the workspace's limits.")
    warm_training_workers: int = Field(1, ge=0, description="Training processes kept ready with "
                                       "TensorFlow imported (from when a model gets data), so that a run starts at "
                                       "once; each holds about 500 MB. 0: none.")
    executor: Literal["local", "ray"] = Field("local", description="Where training runs: local worker processes, "
                                              "or actors on a Ray cluster (`pip install -e \".[ray]\"`; see "
                                              "LAYERLAB_RAY_ADDRESS).")
    ray_address: str = Field("", description="The Ray cluster to train on with LAYERLAB_EXECUTOR=ray, such as "
                             "ray://head:10001 or head:6379. Empty: a Ray instance started on this machine.")
    ray_cpus_per_run: float = Field(1.0, gt=0, description="CPUs Ray reserves for each run's actor.")
    ray_gpus_per_run: float = Field(0.0, ge=0, description="GPUs Ray reserves for each run's actor (1: a GPU of "
                                    "its own; 0.5: two runs share one).")
    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="Where training runs: auto uses a GPU "
                                                  "when TensorFlow sees one (its GPU build: LAYERLAB_TF=gpu "
                                                  "scripts/install-image.sh), else the CPU; cpu never uses one; gpu "
                                                  "fails runs with the reason when there is none.")
    gpus: str = Field("auto", description="GPUs local training processes "
                      "are spread over, one run per GPU while one is free, each process seeing only its own: auto "
                      "(the GPUs CUDA_VISIBLE_DEVICES names, else every GPU the NVIDIA driver lists), a list of "
                      "indices such as 0,1, or none (every process sees every GPU). On Ray, "
                      "LAYERLAB_RAY_GPUS_PER_RUN places runs.")
    worker_memory_mb: int = Field(4096, ge=64, description="Memory one training process may use, in MB; "
                                  "a run that needs more fails with that reason, and nothing else is affected.")
    worker_silence_s: float = Field(900.0, gt=0, description="Seconds a training process may go without "
                                    "reporting anything before it is taken as hung, stopped and its run "
                                    "failed.")
    prepare_timeout: float = Field(300.0, gt=0, description="Seconds a dataset may take to prepare "
                                   "(decode, split, preview) in the data worker.")
    inspect_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the worker that "
                                   "builds models for the summary (includes TensorFlow's start-up).")

    max_channels_drawn: int = Field(32, ge=1, le=1024, description="Channels, filters or units one picture "
                                    "of a layer's insides draws at most (the most active first); the answer says "
                                    "how many it left out.")
    max_samples_listed: int = Field(200, ge=1, le=10_000, description="Test samples one confusion-matrix cell "
                                    "or the largest-errors list gives at most, through the API; pages show up to "
                                    "100 of them.")
    histogram_bins: int = Field(DEFAULT_HISTOGRAM_BINS, ge=4, le=256, description="Bins of each weight and "
                                "activation histogram recorded during training.")

    @field_validator("gpus")
    @classmethod
    def _gpu_indices(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"auto|none|\d+(,\d+)*", value):
            raise ValueError(f"'{value}' is not a GPU list: use auto, none, or GPU indices such as 0,1")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_workshop(self) -> Settings:
        if self.instructor_password and len(self.instructor_password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"LAYERLAB_INSTRUCTOR_PASSWORD must be at least {MIN_PASSWORD_CHARS} characters long "
                             f"(it has {len(self.instructor_password)}).")
        if self.instructor_password_hash and not is_password_hash(self.instructor_password_hash):
            raise ValueError("LAYERLAB_INSTRUCTOR_PASSWORD_HASH is not a hash made by `layerlab hash-password` "
                             "(it starts with `scrypt$`).")
        if self.mode == "workshop" and not (self.instructor_password or self.instructor_password_hash):
            raise ValueError("Workshop mode needs an instructor password: set LAYERLAB_INSTRUCTOR_PASSWORD (at least "
                             f"{MIN_PASSWORD_CHARS} characters) or LAYERLAB_INSTRUCTOR_PASSWORD_HASH.")
        return self

    @property
    def workshop_mode(self) -> bool:
        return self.mode == "workshop"

    @property
    def running_runs_limit(self) -> int:
        return self.max_running_runs or os.cpu_count() or 1

    @property
    def limits(self) -> Limits:
        return Limits(max_params=self.max_params, max_activation_values=self.max_activation_values)

    @property
    def dataset_cache(self) -> Path:
        return self.dataset_cache_dir or self.data_dir / "dataset-cache"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'layerlab.db'}"

    @cached_property
    def signing_key(self) -> str:
        if self.secret_key:
            if len(self.secret_key) < 16:
                raise ValueError("LAYERLAB_SECRET_KEY must be at least 16 characters long.")
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key
