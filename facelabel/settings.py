"""One settings object, read from ``FACELABEL_*`` environment variables.

Each field carries its default and meaning once; the configuration table of
``docs/configuration.md`` and ``deploy/.env.example`` are generated from them (``make docs``).
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError
from sqlalchemy.engine import make_url

from facelabel.artifact import FRAMINGS
from facelabel.errors import FacelabelError
from facelabel.storage import is_url, normalised
from facelabel.vision import detectors

BUNDLED_MODEL = Path(str(importlib.resources.files("facelabel") / "models" / "default"))
PREFIX = "FACELABEL_"

# never echoed
SECRET_BEARING = {"db_url", "broker_url", "db_password", "broker_password", "serve_token", "serve_basic_auth"}

# `:`- or `,`-separated lists, as shells write them (not JSON)
_Paths = Annotated[tuple[Path, ...], NoDecode]
_Names = Annotated[tuple[str, ...], NoDecode]
_Roots = Annotated[tuple[Path | str, ...], NoDecode]  # folders, and URL prefixes as text


def _per_detector(default: str) -> str:
    """Each detector's own ``default`` (a field of ``detectors.Defaults``), for a description."""
    return ", ".join(f"`{name}` {getattr(values, default)}" for name, values in detectors.DEFAULTS.items())


class SettingsError(FacelabelError):
    """A ``FACELABEL_*`` variable holds a value facelabel cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True)

    db_url: str = Field(
        "sqlite:///facelabel.db",
        description="SQLAlchemy URL (SQLite or PostgreSQL; `postgresql://` uses psycopg 3)",
    )
    db_password: SecretStr | None = Field(
        None, description="the database password, kept out of the URL (any characters; never printed)"
    )
    broker_url: str = Field("redis://localhost:6379/0", description="Celery broker")
    broker_password: SecretStr | None = Field(
        None, description="the broker's password, kept out of the URL (any characters; never printed)"
    )
    model: str | None = Field(
        None,
        description="model directory or registered version name; unset: the active version, "
        "else the bundled `facelabel/models/default`",
    )
    data_roots: _Roots = Field(
        (),
        description="`:`-separated folders and URL prefixes (`s3://bucket/prefix`) a worker may "
        "read; enqueue refuses others "
        "(unset: the job's own roots)",
    )
    batch_size: int = Field(32, ge=1, le=4096, description="faces per forward pass")
    chunk_size: int = Field(64, ge=1, le=4096, description="image paths per Celery message")
    decode_threads: int = Field(2, ge=1, le=64, description="decoding threads per worker process")
    max_image_pixels: int = Field(100_000_000, ge=1, description="larger images are refused unread")
    max_file_bytes: int = Field(200_000_000, ge=1, description="larger files are refused unread")
    visibility_timeout: int = Field(
        900, ge=10, description="seconds before an unacknowledged chunk is redelivered"
    )
    outage_deadline: int = Field(
        3600,
        ge=0,
        description="seconds a worker keeps retrying a chunk while the database is away; after "
        "that the chunk waits in the ledger for the reconciler",
    )
    detector: Literal[detectors.NAMES] = Field(
        detectors.DEFAULT,
        description="face detector for photos (not `--aligned`); a job keeps the one it started with",
    )
    face_framing: Literal["box", "landmarks"] = Field(
        "box",
        description="how a detected face is framed like CelebA's aligned crop: its box widened by the "
        "detector's margins, or a similarity fit of its eyes and mouth",
    )
    detect_max_side: int | None = Field(
        None,
        ge=64,
        description="detection runs on a copy at most this many pixels long (unset: the detector's "
        f"own: {_per_detector('max_side')}); photos decode to at least this (unset: 1024)",
    )
    detect_batch: int = Field(
        1, ge=1, le=256, description="photos per MTCNN call (1 is fastest on CPUs, measured); others take one"
    )
    min_face_pixels: int = Field(
        20, ge=1, description="detected faces narrower than this (file pixels) are dropped and counted"
    )
    min_face_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="less sure detections are dropped and counted (unset: the detector's own cut: "
        f"{_per_detector('confidence')})",
    )
    runtime: Literal["auto", "keras", "litert"] = Field(
        "auto", description="the classifier's runtime: `auto` is Keras where a GPU is visible, LiteRT on CPUs"
    )
    runtime_threads: int | None = Field(
        None, ge=1, le=256, description="LiteRT threads per worker process (unset: the CPUs it may use)"
    )
    cache_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facelabel"
        ),
        description="where models converted for LiteRT and the review app's thumbnails are kept "
        "(unset: `$XDG_CACHE_HOME/facelabel`, else `~/.cache/facelabel`)",
    )
    serve_token: SecretStr | None = Field(
        None,
        description="`facelabel serve` bound beyond loopback: the token that allows changes "
        "(unset: a new one is printed at start; never printed otherwise)",
    )
    serve_basic_auth: SecretStr | None = Field(
        None,
        description="`user:password` that every page of `facelabel serve` asks for (as Flower's "
        "FLOWER_BASIC_AUTH); who passes may also make changes",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", description="`debug` also shows TensorFlow's start-up lines (`facelabel --verbose`)"
    )
    celeba_dir: Path | None = Field(None, description="CelebA sample for tests, benchmarks and training")
    gpu: Literal["none", "auto"] = Field(
        "none",
        description="`auto`: `facelabel worker` leases a free GPU of this node in Redis and sets "
        "`CUDA_VISIBLE_DEVICES`",
    )
    gpu_ids: _Names = Field(
        (), description="`,`-separated GPU indices to lease from (unset: what `nvidia-smi` lists)"
    )
    node: str = Field(
        "default", description="this machine's name in GPU leases (one per host sharing a Redis)"
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="a worker's Prometheus endpoint, summed over its processes (0: off)"
    )
    heartbeat_file: Path | None = Field(
        None,
        description="a worker touches it every 10 s while no child is stuck on a chunk for 2 min, "
        "and `facelabel watch` while its loop runs (container healthcheck)",
    )
    train_data: _Paths = Field(
        (),
        description="`:`-separated training folders (`list_attr_celeba.txt` + `images/`) for retraining; "
        "a folder that also has `identity_CelebA.txt` is split by person (the gate's test: unseen people)",
    )
    train_dir: Path = Field(
        Path("training"), description="where retraining writes records and model versions"
    )
    train_recipe: dict = Field(
        {},
        description="JSON of training settings (`backbone`, `weights`, `epochs`, `lr`, `fine_tune`, …) "
        "(unset: the champion's own recipe)",
    )
    train_size: int = Field(
        160,
        ge=16,
        le=1024,
        description="crop size of retraining records (unset: the champion's input size; 160 with "
        "FACELABEL_TRAIN_RECIPE)",
    )
    train_framing: Literal[FRAMINGS] = Field(
        "aligned",
        description="crops of retraining records: `aligned` (whole aligned images, as the bundled model) "
        "or `detected` (the detector's crop, as workers crop photos)",
    )
    promote_tolerance: float = Field(
        0.01,
        ge=-1.0,
        le=1.0,
        description="how much worse than the champion a challenger may be and still be promoted",
    )

    @field_validator("db_url", "broker_url")
    @classmethod
    def _unambiguous(cls, url: str) -> str:
        userinfo = url.partition("://")[2].rpartition("@")[0]
        if any(c in userinfo for c in "@/#?"):
            raise ValueError(
                "its password holds characters a URL cannot carry as they are (@ / # ?); give the "
                "URL without it and the password in FACELABEL_DB_PASSWORD or FACELABEL_BROKER_PASSWORD"
            )
        return url

    @field_validator("data_roots", mode="before")
    @classmethod
    def _resolved_roots(cls, value):
        parts = re.split(r":(?!//)", value) if isinstance(value, str) else value  # s3:// keeps its ":"
        try:
            return tuple(normalised(p) if is_url(p) else Path(p).resolve() for p in parts if str(p).strip())
        except FacelabelError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("train_data", mode="before")
    @classmethod
    def _folders(cls, value):
        return tuple(Path(p) for p in _split(value, ":"))

    @field_validator("gpu_ids", mode="before")
    @classmethod
    def _ids(cls, value):
        return tuple(i.strip() for i in _split(value, ","))

    @property
    def database(self) -> str:
        """The database URL to connect with: FACELABEL_DB_URL plus FACELABEL_DB_PASSWORD."""
        if self.db_password is None:
            return self.db_url
        url = make_url(self.db_url).set(password=self.db_password.get_secret_value())
        return url.render_as_string(hide_password=False)

    @property
    def broker(self) -> str:
        """The broker URL to connect with: FACELABEL_BROKER_URL plus FACELABEL_BROKER_PASSWORD,
        percent-encoded (a password may hold ``/``, ``@``, ``#``, ``:``)."""
        if self.broker_password is None:
            return self.broker_url
        parts = urlsplit(self.broker_url)
        user = quote(parts.username or "", safe="")
        secret = quote(self.broker_password.get_secret_value(), safe="")
        host = parts.hostname or ""
        netloc = f"{user}:{secret}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def redact(self, text: str) -> str:
        """``text`` with every password this process knows (given apart or inside a URL, as
        is or percent-encoded) replaced by ``***``: for messages a user or a log will see."""
        secrets = {s.get_secret_value() for s in (self.db_password, self.broker_password) if s is not None}
        for url in (self.db_url, self.broker_url):
            try:
                secrets.add(urlsplit(url).password or "")
            except ValueError:  # a URL that does not even parse: hide all of it
                secrets.add(url)
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return text

    def with_(self, **changes) -> "Settings":
        """A copy with ``changes`` (validated like the environment)."""
        try:
            return type(self).model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise _settings_error(exc) from None


def _split(value, separator: str):
    if isinstance(value, str):
        return [part for part in value.split(separator) if part.strip()]
    return value


def read_settings() -> Settings:
    """Settings from the environment; the first invalid variable becomes a SettingsError."""
    try:
        return Settings()
    except ValidationError as exc:
        raise _settings_error(exc) from None
    except SourceError as exc:  # a value that is not even JSON where JSON is expected
        field = str(exc).split('"')[1] if '"' in str(exc) else "a variable"
        raise SettingsError(f"{PREFIX}{field.upper()} must be JSON: {exc.__cause__ or exc}") from None


def _settings_error(exc: ValidationError) -> SettingsError:
    """The first invalid value as one line naming its variable (a secret's value never shown)."""
    error = exc.errors()[0]
    field = str(error["loc"][0])
    message = error["msg"].removeprefix("Value error, ")
    message = message[0].lower() + message[1:]
    shown = "" if field in SECRET_BEARING else f", got {error['input']!r}"
    return SettingsError(f"{PREFIX}{field.upper()}: {message}{shown}")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return read_settings()


def markdown_table() -> str:
    """The configuration table of docs/configuration.md."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{PREFIX}{name.upper()}` | {field.description} | {_shown(field)} |")
    return "\n".join(rows) + "\n"


def env_example() -> str:
    """The settings part of ``deploy/.env.example``: every variable, empty, so the default applies."""
    return "".join(
        f"# {field.description}\n{PREFIX}{name.upper()}=\n" for name, field in Settings.model_fields.items()
    )


def _shown(field) -> str:
    if field.default_factory is not None:
        return "see meaning"
    if field.default in (None, (), {}):
        return "unset"
    return f"`{field.default}`"


if __name__ == "__main__":
    print(env_example() if sys.argv[1:] == ["--env"] else markdown_table(), end="")
