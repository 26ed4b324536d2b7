"""The saga engine's own tests, run under saga/tests/settings.py: a project with nothing but the
engine and the toy app in saga/tests/toyshop."""

from .celery import app as celery_app

__all__ = ("celery_app",)
