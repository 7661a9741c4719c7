"""Celery workers: ``celery -A worker worker -Q label`` (or ``facelabel worker``)."""

from worker.celery_app import app

__all__ = ["app"]
