"""Kept apart from shop.api: DRF imports its permission classes while it is still loading."""
from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions, reads included: viewing needs `view_<model>`."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


def requires(perm: str) -> type[permissions.BasePermission]:
    """A permission class for an action that needs one named Django permission."""

    class HasPermission(permissions.BasePermission):
        message = f"You need the {perm} permission."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

    return HasPermission
