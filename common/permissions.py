"""Kept apart from common.api: DRF imports its permission classes while it is still loading."""

from rest_framework import permissions

from saga.operator.permissions import requires

__all__ = ["ModelPermissions", "requires"]


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions, reads included: viewing needs `view_<model>`."""

    # DRF reads the class's map; its stubs declare an instance attribute, so a ClassVar would not type-check.
    perms_map = {  # noqa: RUF012
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }
