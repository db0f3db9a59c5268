"""The operator review API: the feed of a user's lines and a decision on an unloading (the same
rows and the same domain call as the pages; a railcar of another line is a 404)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.annotation_models import Grade
from operations import review
from operations.access import railcar_for
from operations.models import LiveEstimate, OperatorDecision
from operations.operate_feed import decision_data, feed_rows
from operations.operate_views import OPERATORS
from scrapannot.api import HasRole


class FeedOutputSerializer(serializers.Serializer):
    unloadings = serializers.ListField(
        child=serializers.DictField(),
        help_text="Newest first: id, real_id, line, camera, started_at, status, url, estimate "
        "(contamination_pct, grade, grade_probs, confidence, quality_flags, model_version, "
        "layers_scored), decision and escalations.",
    )


class FeedApi(APIView):
    allowed_roles = OPERATORS
    permission_classes = [HasRole]

    @extend_schema(responses={200: FeedOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response({"unloadings": feed_rows(request.user)})


class DecisionInputSerializer(serializers.Serializer):
    estimate = serializers.IntegerField(min_value=1, help_text="The estimate decided on.")
    action = serializers.ChoiceField(choices=OperatorDecision.Action.choices)
    contamination_pct = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=100
    )
    grade = serializers.ChoiceField(choices=Grade.choices, required=False, allow_blank=True)
    rationale_code = serializers.CharField(required=False, allow_blank=True, max_length=32)
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=review.MAX_NOTE, trim_whitespace=True
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            review.validate(
                action=attrs["action"],
                contamination_pct=attrs.get("contamination_pct"),
                grade=attrs.get("grade", ""),
                rationale_code=attrs.get("rationale_code", ""),
                note=attrs.get("note", ""),
            )
        except review.InvalidDecision as exc:
            raise serializers.ValidationError({k: [v] for k, v in exc.errors.items()}) from exc
        return attrs


class DecisionOutputSerializer(serializers.Serializer):
    decision = serializers.DictField()
    escalations = serializers.ListField(child=serializers.CharField())


class DecisionApi(APIView):
    allowed_roles = OPERATORS
    permission_classes = [HasRole]

    @extend_schema(
        request=DecisionInputSerializer,
        responses={
            201: DecisionOutputSerializer,
            400: OpenApiResponse(description="field errors"),
            404: OpenApiResponse(description="no such unloading on your lines"),
        },
    )
    def post(self, request: Request, railcar_id: int) -> Response:
        railcar = railcar_for(request.user, railcar_id)
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        estimate = LiveEstimate.objects.filter(pk=attrs["estimate"], railcar=railcar).first()
        if estimate is None:
            raise serializers.ValidationError({"estimate": ["not an estimate of this unloading"]})
        outcome = review.decide(
            operator=request.user,
            railcar=railcar,
            estimate=estimate,
            action=attrs["action"],
            contamination_pct=attrs.get("contamination_pct"),
            grade=attrs.get("grade", ""),
            rationale_code=attrs.get("rationale_code", ""),
            note=attrs.get("note", ""),
        )
        body = {
            "decision": decision_data(outcome.decision),
            "escalations": [e.route for e in outcome.escalations],
        }
        return Response(body, status=status.HTTP_201_CREATED)
