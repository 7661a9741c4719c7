"""The model inside a worker process, loaded once on the runtime FACELABEL_RUNTIME names:
Keras (keras_classifier.py; GPUs) or LiteRT (the same model converted, lite_classifier.py;
CPUs)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from facelabel.artifact import ArtifactError, load_artifact
from facelabel.settings import Settings
from facelabel.vision.keras_classifier import Classifier
from facelabel.vision.lite_classifier import LiteClassifier

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[tuple[str, str], Classifier | LiteClassifier] = {}


def runtime_for(setting: str) -> str:
    """``auto``: Keras where an NVIDIA GPU is visible, LiteRT on CPUs (told without TensorFlow)."""
    if setting != "auto":
        return setting
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "litert"
    return "keras" if any(Path("/proc/driver/nvidia/gpus").glob("*")) else "litert"


def get_classifier(
    model_path: str, settings: Settings, *, sha256: str | None = None
) -> Classifier | LiteClassifier:
    """The classifier for ``model_path`` on the settings' runtime, loaded once per process
    (threads share it), refused if its weights are not the ``sha256`` the registry recorded.
    Keeps only the most recently used model, so switching versions does not grow memory."""
    runtime = runtime_for(settings.runtime)
    with _lock:
        classifier = _loaded.get((model_path, runtime))
        if classifier is None:
            log.info("loading model %s on %s", model_path, runtime)
            artifact = load_artifact(model_path)
            digest = artifact.weights_sha256() if sha256 is not None or runtime == "litert" else None
            if sha256 is not None and digest != sha256:
                raise ArtifactError(f"{artifact.weights_path} changed since it was registered")
            if runtime == "keras":
                classifier = Classifier(artifact)
            else:
                threads = settings.runtime_threads or len(os.sched_getaffinity(0))
                classifier = LiteClassifier(
                    artifact, cache_dir=settings.cache_dir, threads=threads, digest=digest
                )
            _loaded.clear()
            _loaded[(model_path, runtime)] = classifier
        return classifier
