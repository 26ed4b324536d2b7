from collections.abc import Callable

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework import status as http
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from . import selectors, services
from .models import SagaInstance, SagaStatus
from .permissions import requires
from .rest import UUID_PATTERN, conflicts_as_409


class StepOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField(source="attempt")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


class SagaOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    current_step = serializers.CharField()
    aggregate_id = serializers.UUIDField()
    correlation_id = serializers.UUIDField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    deadline = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    steps = StepOutput(many=True, source="steps.all")


class SagaFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=SagaStatus.choices)
    type = filters.CharFilter()
    aggregate_id = filters.UUIDFilter()

    class Meta:
        model = SagaInstance
        fields = ("status", "type", "aggregate_id")


class SagaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Sagas with their step history; operators retry or compensate the ones that stopped.
    A project that calls its aggregates by a name of its own subclasses this with its serializer
    and filter."""

    queryset = selectors.saga_list()
    serializer_class = SagaOutput
    filterset_class = SagaFilter
    # Its own filter backend and permissions, whatever the project's REST_FRAMEWORK defaults are:
    # the filters work, and only those allowed read (or, below, operate) sagas.
    filter_backends = (filters.DjangoFilterBackend,)
    permission_classes = (requires("saga.view_sagainstance"),)
    lookup_value_regex = UUID_PATTERN

    @extend_schema(request=None, responses={202: SagaOutput, 409: dict})
    @action(detail=True, methods=["post"], permission_classes=[requires("saga.change_sagainstance")])
    def retry(self, request: Request, pk: str) -> Response:
        return self._operate(services.saga_retry)

    @extend_schema(request=None, responses={202: SagaOutput, 409: dict})
    @action(detail=True, methods=["post"], permission_classes=[requires("saga.change_sagainstance")])
    def compensate(self, request: Request, pk: str) -> Response:
        return self._operate(services.saga_compensate)

    def _operate(self, operation: Callable[..., object]) -> Response:
        saga = self.get_object()
        with conflicts_as_409(services.SagaStateConflict, code="saga_state"):
            operation(saga_id=saga.pk)
        output = self.get_serializer_class()(selectors.saga_get(saga_id=saga.pk))
        return Response(output.data, status=http.HTTP_202_ACCEPTED)
