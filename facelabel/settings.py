"""One settings object, read from ``FACELABEL_*`` environment variables."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path

from facelabel.artifact import FRAMINGS

PACKAGE_ROOT = Path(__file__).resolve().parent
BUNDLED_MODEL = PACKAGE_ROOT.parent / "models" / "default"


class SettingsError(ValueError):
    """A ``FACELABEL_*`` variable holds a value facelabel cannot use."""


def _number(name: str, default, kind: type, low: float, high: float | None = None):
    """``name`` from the environment as ``kind`` within [low, high]; ``default`` when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(
            f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}"
        ) from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise SettingsError(f"{name} must be {bounds}, got {value}")
    return value


def _int(name: str, default: int, minimum: int = 1) -> int:
    return _number(name, default, int, minimum)


def _fraction(name: str, default: float) -> float:
    return _number(name, default, float, 0.0, 1.0)


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _json_object(name: str) -> dict:
    raw = os.environ.get(name) or "{}"
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must be a JSON object, got {raw!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    db_url: str = "sqlite:///facelabel.db"
    broker_url: str = "redis://localhost:6379/0"
    model: str | None = None
    data_roots: tuple[Path, ...] = ()
    batch_size: int = 32
    chunk_size: int = 64
    decode_threads: int = 2
    max_image_pixels: int = 100_000_000
    max_file_bytes: int = 200_000_000
    visibility_timeout: int = 900
    detect_max_side: int = 1024
    detect_batch: int = 1
    min_face_pixels: int = 20
    min_face_confidence: float = 0.8
    celeba_dir: Path | None = None
    gpu: str = "none"  # "auto": lease a free GPU of this node (see worker/gpu_lease.py)
    gpu_ids: tuple[str, ...] = ()
    node: str = "default"
    metrics_port: int = 0  # 0: no Prometheus endpoint
    heartbeat_file: Path | None = None
    train_data: tuple[Path, ...] = ()  # CelebA-format folders: list_attr_celeba.txt + images/
    train_dir: Path = Path("training")
    train_recipe: dict = dataclasses.field(default_factory=dict)  # trainer.train.Recipe fields
    train_size: int = 160
    train_framing: str = "aligned"  # crops of retraining records: the bundled model's
    promote_tolerance: float = 0.01

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get
        roots = tuple(Path(p).resolve() for p in env("FACELABEL_DATA_ROOTS", "").split(":") if p)
        celeba = env("FACELABEL_CELEBA_DIR")
        heartbeat = env("FACELABEL_HEARTBEAT_FILE")
        return cls(
            db_url=env("FACELABEL_DB_URL") or cls.db_url,
            broker_url=env("FACELABEL_BROKER_URL") or cls.broker_url,
            model=env("FACELABEL_MODEL") or None,
            data_roots=roots,
            batch_size=_int("FACELABEL_BATCH_SIZE", cls.batch_size),
            chunk_size=_int("FACELABEL_CHUNK_SIZE", cls.chunk_size),
            decode_threads=_int("FACELABEL_DECODE_THREADS", cls.decode_threads),
            max_image_pixels=_int("FACELABEL_MAX_IMAGE_PIXELS", cls.max_image_pixels),
            max_file_bytes=_int("FACELABEL_MAX_FILE_BYTES", cls.max_file_bytes),
            visibility_timeout=_int("FACELABEL_VISIBILITY_TIMEOUT", cls.visibility_timeout),
            detect_max_side=_int("FACELABEL_DETECT_MAX_SIDE", cls.detect_max_side, minimum=64),
            detect_batch=_int("FACELABEL_DETECT_BATCH", cls.detect_batch),
            min_face_pixels=_int("FACELABEL_MIN_FACE_PIXELS", cls.min_face_pixels),
            min_face_confidence=_fraction("FACELABEL_MIN_FACE_CONFIDENCE", cls.min_face_confidence),
            celeba_dir=Path(celeba) if celeba else None,
            gpu=_choice("FACELABEL_GPU", cls.gpu, ("none", "auto")),
            gpu_ids=tuple(i.strip() for i in env("FACELABEL_GPU_IDS", "").split(",") if i.strip()),
            node=env("FACELABEL_NODE") or cls.node,
            metrics_port=_number("FACELABEL_METRICS_PORT", cls.metrics_port, int, 0, 65535),
            heartbeat_file=Path(heartbeat) if heartbeat else None,
            train_data=tuple(Path(p) for p in env("FACELABEL_TRAIN_DATA", "").split(":") if p),
            train_dir=Path(env("FACELABEL_TRAIN_DIR") or cls.train_dir),
            train_recipe=_json_object("FACELABEL_TRAIN_RECIPE"),
            train_size=_number("FACELABEL_TRAIN_SIZE", cls.train_size, int, 16, 1024),
            train_framing=_choice("FACELABEL_TRAIN_FRAMING", cls.train_framing, FRAMINGS),
            promote_tolerance=_number("FACELABEL_PROMOTE_TOLERANCE", cls.promote_tolerance, float, -1.0, 1.0),
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings.from_env()
