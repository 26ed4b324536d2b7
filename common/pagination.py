"""The API's pagination; apart from common.api, because DRF imports it while building its generic views."""

from typing import Any

from rest_framework import exceptions, pagination


class Pagination(pagination.PageNumberPagination):
    """DRF's page numbers, without `?page=last` (the schema says a page is an integer from 1)."""

    last_page_strings = ()

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters

    def get_page_number(self, request: Any, paginator: Any) -> Any:
        if request.query_params.get(self.page_query_param) == "":  # DRF would read it as page 1
            raise exceptions.NotFound("Invalid page.")
        return super().get_page_number(request, paginator)
