"""Django's admin autodiscovery imports `<app>.admin`: the engine's admin lives in operator/."""

from saga.operator import admin  # noqa: F401 - registers the engine's admin pages
