"""The expected errors: a user's mistake or an unusable input, never a bug.

Every one derives from FacelabelError, whose ``str()`` is the one-line reason; the CLI's root
group turns it into ``Error: …`` and exit status 1. Anything else is a bug and keeps its
traceback.
"""


class FacelabelError(Exception):
    """An expected failure; ``str()`` is the reason shown to users."""


class ReadError(FacelabelError):
    """A path the worker will not or cannot read; ``str()`` is the reason shown to users."""


NOT_FOUND = "file not found"  # the reason recorded for a path with no file (it may come back)
