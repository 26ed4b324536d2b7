"""Permission checks of the engine's API. Imports only DRF's permissions: DRF loads permission
classes while it is still loading itself."""

from typing import TYPE_CHECKING

from rest_framework import permissions

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


def requires(perm: str) -> type[permissions.BasePermission]:
    """A permission class for an action that needs one named Django permission."""

    class HasPermission(permissions.BasePermission):
        message = f"You need the {perm} permission."

        def has_permission(self, request: "Request", view: "APIView") -> bool:
            # request.user is None when DRF's UNAUTHENTICATED_USER setting is None; the stubs leave that case out.
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))  # type: ignore[truthy-bool]

    return HasPermission
