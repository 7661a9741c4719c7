"""LiteRT (``ai-edge-litert``), the TFLite runtime that replaces TensorFlow's deprecated
``tf.lite.Interpreter``: the classifier's CPU runtime and BlazeFace's. It imports in a
fraction of a second and without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


class BatchRunner:
    """A LiteRT interpreter of one image input and one output, fed uint8 batches of any size
    (its input is resized on change)."""

    def __init__(self, model: Path | bytes, *, size: int, threads: int):
        self.interpreter, self.size, self.batch = interpreter(model, threads=threads), size, None
        (source,), (target,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        self.input, self.output = source["index"], target["index"]

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if self.batch != len(pixels):
            self.interpreter.resize_tensor_input(self.input, [len(pixels), self.size, self.size, 3])
            self.interpreter.allocate_tensors()
            self.batch = len(pixels)
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(pixels, dtype=np.uint8))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()
