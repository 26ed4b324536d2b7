"""The saga resource over HTTP (list, detail, and the operator's actions: retry, compensate,
rewind, resolve), for a project to route where it likes or nest under its own aggregates."""

import re
from collections.abc import Callable

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework import status as http
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from saga import selectors, services
from saga.core.connections import AFTER_COMMIT_ATTEMPTS, on_live_connection
from saga.models import SagaInstance, SagaStatus, SagaStep
from saga.operator.permissions import requires
from saga.operator.rest import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_IDEMPOTENCY_KEY,
    UUID_PATTERN,
    ErrorOutput,
    Text,
    conflicts_as_409,
)

MAX_KEY = MAX_IDEMPOTENCY_KEY  # characters of an Idempotency-Key


class StepOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=SagaStep.Kind.choices)
    status = serializers.ChoiceField(choices=SagaStep.Status.choices)
    attempts = serializers.IntegerField(source="attempt")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


class RunningOutput(serializers.Serializer):
    """The attempt a saga is running now."""

    step = serializers.CharField()
    kind = serializers.ChoiceField(choices=SagaStep.Kind.choices)
    attempt = serializers.IntegerField()
    since = serializers.DateTimeField()
    timeout = serializers.FloatField(allow_null=True, help_text="The step's timeout in seconds (null: none).")
    stuck = serializers.BooleanField(help_text="It has run past its timeout: its worker died or hangs.")


class SagaOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SagaStatus.choices)
    current_step = serializers.CharField(help_text="The step running now (see `running`), or else the next to run.")
    aggregate_id = serializers.UUIDField()
    # The HTTP request that placed it (X-Request-ID); the saga's own id is the messages' correlation_id.
    request_id = serializers.UUIDField(source="correlation_id")
    error = serializers.CharField()
    attempts = serializers.IntegerField(help_text="Attempts at the current step, the running one included.")
    deadline = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    steps = StepOutput(many=True, source="steps.all")
    running = serializers.SerializerMethodField(
        help_text="The attempt running now, whether or not anything of it is committed yet; null when none is."
    )

    @extend_schema_field(RunningOutput(allow_null=True))
    def get_running(self, saga: SagaInstance) -> dict | None:
        running = selectors.saga_running(saga=saga)
        return None if running is None else RunningOutput(running).data

    def to_representation(self, saga: SagaInstance) -> dict:
        shown = super().to_representation(saga)
        if shown["running"] is not None:  # the step and attempt under way, not the last committed
            shown["current_step"], shown["attempts"] = shown["running"]["step"], shown["running"]["attempt"]
        return shown


class SagaFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=SagaStatus.choices)
    type = filters.CharFilter()
    aggregate_id = filters.UUIDFilter()

    class Meta:
        model = SagaInstance
        fields = ("status", "type", "aggregate_id")


class OperatorInput(serializers.Serializer):
    comment = Text(
        max_length=2000,
        help_text="Required: why (for a resolve: how the saga was repaired); kept in the audit trail.",
        error_messages={"required": services.COMMENT_REQUIRED, "blank": services.COMMENT_REQUIRED},
    )


class RewindInput(OperatorInput):
    step = Text(max_length=100, help_text="The step to run the saga forward again from.")


_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    pattern=IDEMPOTENCY_KEY_PATTERN,
    description="The same key sent again gets the first answer and changes nothing.",
)
# 401, 403, 404 are the project's to declare (its schema class knows its authentication); these are the engine's.
_ERRORS = {
    409: OpenApiResponse(
        ErrorOutput,
        "The saga's state does not allow this (code saga_state), or the Idempotency-Key was used for another "
        "action (code idempotency_key_reused).",
    )
}
OPERATE = (requires(services.OPERATE_SAGAS),)


class SagaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Sagas with their step history; operators retry, compensate, rewind or resolve the ones that
    stopped (each action checks `saga.change_sagainstance` and is written to the audit trail).
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

    @extend_schema(request=OperatorInput, responses={202: SagaOutput, **_ERRORS}, parameters=[_KEY])
    @action(detail=True, methods=["post"], permission_classes=OPERATE)
    def retry(self, request: Request, pk: str) -> Response:
        """Resume a FAILED saga where it stopped (a saga still moving is only nudged)."""
        return self._operate(request, OperatorInput, services.saga_retry)

    @extend_schema(request=OperatorInput, responses={202: SagaOutput, **_ERRORS}, parameters=[_KEY])
    @action(detail=True, methods=["post"], permission_classes=OPERATE)
    def compensate(self, request: Request, pk: str) -> Response:
        """Roll back a saga that is stuck or FAILED before its pivot."""
        return self._operate(request, OperatorInput, services.saga_compensate)

    @extend_schema(request=RewindInput, responses={202: SagaOutput, **_ERRORS}, parameters=[_KEY])
    @action(detail=True, methods=["post"], permission_classes=OPERATE)
    def rewind(self, request: Request, pk: str) -> Response:
        """Run the saga forward again from `step` (never back across its pivot)."""
        return self._operate(request, RewindInput, services.saga_rewind)

    @extend_schema(request=OperatorInput, responses={200: SagaOutput, **_ERRORS}, parameters=[_KEY])
    @action(detail=True, methods=["post"], permission_classes=OPERATE)
    def resolve(self, request: Request, pk: str) -> Response:
        """Mark a FAILED saga resolved, with a comment; it stays FAILED and is no longer operated."""
        return self._operate(request, OperatorInput, services.saga_resolve, answer=http.HTTP_200_OK)

    def _operate(
        self,
        request: Request,
        input_class: type[serializers.Serializer],
        operation: Callable[..., object],
        answer: int = http.HTTP_202_ACCEPTED,
    ) -> Response:
        saga = self.get_object()
        payload = input_class(data=request.data)  # no body is {}; a body that is no JSON object is refused
        payload.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise serializers.ValidationError(
                {"Idempotency-Key": f"must be 1 to {MAX_KEY} visible ASCII characters (spaces inside)."}
            )
        scoped = f"api:{request.user.pk}:{key}" if key else None
        with (
            conflicts_as_409(services.SagaStateConflict, code="saga_state"),
            conflicts_as_409(services.OperatorKeyReused, code="idempotency_key_reused"),
        ):
            operation(saga_id=saga.pk, by=request.user, key=scoped, **payload.validated_data)
        # Done (committed): the answer is a success even if the connection died since.
        output = self.get_serializer_class()(
            on_live_connection(lambda: selectors.saga_get(saga_id=saga.pk), attempts=AFTER_COMMIT_ATTEMPTS)
        )
        return Response(output.data, status=answer)
