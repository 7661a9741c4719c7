"""LiteRT (``ai-edge-litert``), the TFLite runtime that replaces TensorFlow's deprecated
``tf.lite.Interpreter``: the classifier's CPU runtime and BlazeFace's. It imports in a
fraction of a second and without TensorFlow."""

from __future__ import annotations

from pathlib import Path

from facelabel.quiet import native_stderr_quiet


def interpreter(model: Path | bytes, *, threads: int):
    """A LiteRT interpreter (XNNPACK on CPUs) for a file or a flatbuffer, tensors allocated;
    one per thread."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    with native_stderr_quiet():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        runner = Interpreter(num_threads=threads, **source)
        runner.allocate_tensors()
    return runner
