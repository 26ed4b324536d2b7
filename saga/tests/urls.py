"""The toy project's URLs: the engine's API routed as a project would route it."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from saga.operator.apis import SagaViewSet
from saga.operator.metrics import metrics_view

router = DefaultRouter()
router.register("sagas", SagaViewSet, basename="saga")

urlpatterns = [path("api/", include(router.urls))]

# Prometheus metrics (saga/operator/metrics.py): the engine's view, routed where the project likes.
urlpatterns.append(path("metrics", metrics_view))
