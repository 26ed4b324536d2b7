from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from common.api import NotFoundView
from customers.apis import CustomerViewSet
from inventory.apis import ProductViewSet
from orders.apis import OrderSagaViewSet, OrderViewSet
from saga.operator.metrics import metrics_view

from .health import health


class OptionalSlashRouter(DefaultRouter):
    """The contract's paths have no trailing slash; accept both spellings."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("products", ProductViewSet, basename="product")
router.register("orders", OrderViewSet, basename="order")
router.register("sagas", OrderSagaViewSet, basename="saga")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", health, name="health"),
    # Prometheus: a user with the saga view permission (API token or session), or the bearer SAGA_METRICS_TOKEN.
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Both served with their assets from drf-spectacular-sidecar: no CDN, no web font.
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="shop/redoc.html"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include(router.urls)),
    # Whatever else is asked of the API (a malformed id, odd characters) gets its JSON 404.
    re_path(r"^api/.", NotFoundView.as_view(), name="api-not-found"),
]
