"""Native libraries' start-up lines kept off the user's terminal.

TensorFlow's C++ runtime (its oneDNN and absl notices) and LiteRT (its XNNPACK notice)
write straight to file descriptor 2 while they load, whatever TF_CPP_MIN_LOG_LEVEL says;
they are hidden unless FACELABEL_LOG_LEVEL=debug (``facelabel --verbose``) asks for them.
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
        if "tensorflow" not in sys.modules:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with native_stderr_quiet():
                import tensorflow  # noqa: F401
    import tensorflow

    return tensorflow


@contextlib.contextmanager
def native_stderr_quiet():
    """File descriptor 2 goes to /dev/null inside (unless debugging)."""
    if get_settings().log_level == "debug":
        yield
        return
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
