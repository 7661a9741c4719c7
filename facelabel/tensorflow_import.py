"""Import TensorFlow without its start-up lines on the user's terminal.

TensorFlow's C++ runtime writes its oneDNN and absl notices straight to file descriptor 2
while it loads, whatever TF_CPP_MIN_LOG_LEVEL says; they are hidden unless
FACELABEL_LOG_LEVEL=debug (``facelabel --verbose``) asks for them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from facelabel.settings import get_settings

_lock = threading.Lock()


def load_tensorflow():
    """The ``tensorflow`` module, imported quietly the first time."""
    with _lock:
        if "tensorflow" not in sys.modules and get_settings().log_level != "debug":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with _native_stderr_to_devnull():
                import tensorflow  # noqa: F401
    import tensorflow

    return tensorflow


@contextlib.contextmanager
def _native_stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
