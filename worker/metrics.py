"""Prometheus metrics of a worker: images and failures (rate() of them is images/s), faces,
and the time per detector call, forward pass and chunk.

``facelabel worker --metrics-port`` serves them for all its processes: before anything
imports prometheus_client, it points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder; the
forked children write their counts there and the parent's endpoint adds them up. Without
it (embedded labelling) they stay in-process.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

IMAGES = Counter("facelabel_images", "Images finished, by outcome (labelled or failed).", ["outcome"])
FACES = Counter("facelabel_faces", "Faces classified.")
DETECT_SECONDS = Histogram("facelabel_detect_seconds", "Seconds per face-detector call (a batch of photos).")
BATCH_SECONDS = Histogram("facelabel_batch_seconds", "Seconds per forward pass over a batch of faces.")
CHUNK_SECONDS = Histogram(
    "facelabel_chunk_seconds",
    "Seconds per chunk, from reading the first file to the committed transaction.",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)


def serve(port: int) -> None:
    """Serve the sum over this worker's processes on ``port`` (a daemon thread)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
