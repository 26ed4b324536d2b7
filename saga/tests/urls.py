"""The toy project's URLs: the engine's API routed as a project would route it."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from saga.apis import SagaViewSet

router = DefaultRouter()
router.register("sagas", SagaViewSet, basename="saga")

urlpatterns = [path("api/", include(router.urls))]
