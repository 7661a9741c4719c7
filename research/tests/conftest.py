"""The product tests' fixtures serve the research tests too: services and folders
(tests/conftest.py) and sparse predictions like CelebA's (tests/test_metrics.py)."""

from tests.conftest import celeba_dir, sqlite_url  # noqa: F401
from tests.test_metrics import predictions  # noqa: F401
