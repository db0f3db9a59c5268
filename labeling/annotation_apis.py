"""The annotator's API. Every answer is about one assignment the caller holds, by its opaque id;
anything else is a 404 that looks the same whether the thing exists or not."""

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import annotation, pool
from labeling.framefiles import FrameFileMissing, frame_image_response
from labeling.models import Assignment, FailureCode, Grade, InclusionKind
from scrapannot.api import HasRole, PrebuiltFieldsSerializer
from scrapannot.roles import Role

GONE = {"detail": "This assignment is no longer active."}
EXPIRED = {
    "detail": "The lease on this railcar has ended: nothing more is saved on it, a rating "
    "included. Take the next railcar."
}
NOTHING_LEFT = {
    "frames": [
        "Every frame of this railcar is excluded, so there is nothing to rate: release it "
        "with the reason frames_unusable instead."
    ]
}


class AnnotatorApi(APIView):
    allowed_roles = (Role.ANNOTATOR,)
    permission_classes = [HasRole]

    def handle_exception(self, exc: Exception) -> Response:
        # A frame whose file is gone (for its image or a mask proposal) is answered like one
        # that does not exist.
        if isinstance(
            exc, pool.NotYourAssignment | annotation.FrameNotInAssignment | FrameFileMissing
        ):
            exc = NotFound()
        if isinstance(exc, pool.LeaseExpired):
            return Response(EXPIRED, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, pool.LeaseLost):
            return Response(GONE, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, annotation.NothingLeftToRate):
            return Response(NOTHING_LEFT, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # The workspace's state lives on the server: no cache (nor the browser's Back) may
        # answer for it.
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response


class FrameOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uid")
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class LayerOutputSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    frames = FrameOutputSerializer(many=True, help_text="eligible frames, the keyframe first")


class ExclusionOutputSerializer(serializers.Serializer):
    frame = serializers.UUIDField(source="frame.uid")
    code = serializers.CharField()
    note = serializers.CharField()


class MaskOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uid")
    frame = serializers.UUIDField(source="frame.uid")
    rle = serializers.JSONField()
    area = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=InclusionKind.choices)
    # The annotator's own prompts: a correction starts from them (more clicks, then accept).
    prompts = serializers.JSONField()


class OwnRatingOutputSerializer(serializers.Serializer):
    contamination_pct = serializers.DecimalField(max_digits=4, decimal_places=1)
    grade = serializers.CharField()


class AssignmentOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uid")
    pseudonym = serializers.CharField()
    status = serializers.SerializerMethodField(
        help_text="active, submitted, released or expired (a lease past its end is expired "
        "even before the minute's sweep returns its slot)"
    )
    expires_at = serializers.DateTimeField(source="lease_expires_at")
    seconds_left = serializers.SerializerMethodField(
        help_text="seconds until the lease ends, by the server's clock (0 once it has)"
    )
    layers = serializers.SerializerMethodField()
    exclusions = serializers.SerializerMethodField()
    masks = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField()

    def get_status(self, assignment: Assignment) -> str:
        if assignment.status == Assignment.Status.ACTIVE and pool.lease_over(assignment):
            return str(Assignment.Status.EXPIRED)
        return str(assignment.status)

    @extend_schema_field(serializers.IntegerField())  # type: ignore[misc]
    def get_seconds_left(self, assignment: Assignment) -> int:
        if assignment.status != Assignment.Status.ACTIVE:
            return 0
        return max(0, int((assignment.lease_expires_at - timezone.now()).total_seconds()))

    @extend_schema(responses=LayerOutputSerializer(many=True))  # type: ignore[misc]
    def get_layers(self, assignment: Assignment) -> list[dict[str, Any]]:
        # LayerOutputSerializer's answer, by hand (see to_representation).
        return [
            {
                "index": int(layer.index),
                "frames": [
                    {"id": str(frame.uid), "width": int(frame.width), "height": int(frame.height)}
                    for frame in layer.frames
                ],
            }
            for layer in annotation.workspace_layers(assignment=assignment)
        ]

    def get_exclusions(self, assignment: Assignment) -> list[dict[str, Any]]:
        if getattr(assignment, "fresh_lease", False):
            return []
        return ExclusionOutputSerializer(
            assignment.exclusions.select_related("frame"), many=True
        ).data

    def get_masks(self, assignment: Assignment) -> list[dict[str, Any]]:
        if getattr(assignment, "fresh_lease", False):
            return []
        return MaskOutputSerializer(
            assignment.masks.select_related("frame").order_by("created_at"), many=True
        ).data

    def get_rating(self, assignment: Assignment) -> dict[str, Any] | None:
        if getattr(assignment, "fresh_lease", False):
            return None
        rating = getattr(assignment, "rating", None)
        return own_rating(rating) if rating else None

    def to_representation(self, assignment: Assignment) -> dict[str, Any]:
        # The declared fields' answer, built by hand: DRF copies every declared field (and the
        # nested serializers' fields) for each answer, about 5 % of a worker's CPU in the
        # annotator loop. The fields stay declared for the schema; a test checks that both
        # give the same answer for every kind of assignment.
        return {
            "id": str(assignment.uid),
            "pseudonym": str(assignment.pseudonym),
            "status": self.get_status(assignment),
            "expires_at": _DATETIME.to_representation(assignment.lease_expires_at),
            "seconds_left": self.get_seconds_left(assignment),
            "layers": self.get_layers(assignment),
            "exclusions": self.get_exclusions(assignment),
            "masks": self.get_masks(assignment),
            "rating": self.get_rating(assignment),
        }


_DATETIME = serializers.DateTimeField()
_PCT = OwnRatingOutputSerializer().fields["contamination_pct"]


def own_rating(rating: Any) -> dict[str, Any]:
    """OwnRatingOutputSerializer's answer, by hand (as AssignmentOutputSerializer's)."""
    return {"contamination_pct": _PCT.to_representation(rating.contamination_pct),
            "grade": str(rating.grade)}  # fmt: skip


def assignment_response(assignment: Assignment, code: int = status.HTTP_200_OK) -> Response:
    return Response(AssignmentOutputSerializer(assignment).data, status=code)


class NextAssignmentApi(AnnotatorApi):
    @extend_schema(
        request=None,
        responses={200: AssignmentOutputSerializer, 204: OpenApiResponse(description="no work")},
    )
    def post(self, request: Request) -> Response:
        assignment = pool.next_assignment(annotator=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return assignment_response(assignment)


class AssignmentDetailApi(AnnotatorApi):
    @extend_schema(responses=AssignmentOutputSerializer)
    def get(self, request: Request, uid: str) -> Response:
        return assignment_response(pool.holder_assignment(uid=uid, annotator=request.user))


class ReleaseInputSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=pool.ReleaseReason.choices)
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["reason"] == pool.ReleaseReason.OTHER and not data["note"].strip():
            raise serializers.ValidationError({"note": ["Say why in the note."]})
        return data


class ReleaseAssignmentApi(AnnotatorApi):
    @extend_schema(request=ReleaseInputSerializer, responses={204: None})
    def post(self, request: Request, uid: str) -> Response:
        data = ReleaseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pool.release_assignment(uid=uid, annotator=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExclusionInputSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=FailureCode.choices)
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class FrameExclusionApi(AnnotatorApi):
    @extend_schema(request=ExclusionInputSerializer, responses=ExclusionOutputSerializer)
    def put(self, request: Request, uid: str, frame_uid: str) -> Response:
        data = ExclusionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exclusion = annotation.exclude_frame(
            uid=uid, annotator=request.user, frame_uid=frame_uid, **data.validated_data
        )
        return Response(ExclusionOutputSerializer(exclusion).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, uid: str, frame_uid: str) -> Response:
        annotation.include_frame(uid=uid, annotator=request.user, frame_uid=frame_uid)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RatingInputSerializer(PrebuiltFieldsSerializer):
    contamination_pct = serializers.DecimalField(
        max_digits=4, decimal_places=1, min_value=0, max_value=100
    )
    grade = serializers.ChoiceField(choices=Grade.choices)
    seconds_spent = serializers.IntegerField(min_value=0, max_value=24 * 3600)


class RatingApi(AnnotatorApi):
    @extend_schema(
        request=RatingInputSerializer,
        responses={201: OwnRatingOutputSerializer, 200: OwnRatingOutputSerializer},
    )
    def post(self, request: Request, uid: str) -> Response:
        data = RatingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rating, created = annotation.submit_rating(
            uid=uid, annotator=request.user, **data.validated_data
        )
        return Response(
            own_rating(rating), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class MaskProposalInputSerializer(serializers.Serializer):
    prompts = serializers.JSONField(
        help_text="{points: [[x, y], ...], labels: [1|0, ...], box: [x0, y0, x1, y1] | null}"
    )


class MaskProposalOutputSerializer(serializers.Serializer):
    rle = serializers.JSONField()
    area = serializers.IntegerField()
    score = serializers.FloatField()
    engine = serializers.CharField()


def _bad_input(field: str, exc: ValueError) -> Response:
    return Response({field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)


class MaskProposalApi(AnnotatorApi):
    @extend_schema(request=MaskProposalInputSerializer, responses=MaskProposalOutputSerializer)
    def post(self, request: Request, uid: str, frame_uid: str) -> Response:
        data = MaskProposalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = annotation.propose_mask(
                uid=uid, annotator=request.user, frame_uid=frame_uid, **data.validated_data
            )
        except ValueError as exc:
            return _bad_input("prompts", exc)
        return Response(MaskProposalOutputSerializer(result).data)


class MaskCreateInputSerializer(serializers.Serializer):
    rle = serializers.JSONField()
    prompts = serializers.JSONField()
    engine = serializers.CharField(max_length=80)
    kind = serializers.ChoiceField(choices=InclusionKind.choices, default=InclusionKind.OTHER)


class MaskChangeInputSerializer(serializers.Serializer):
    """Any of: new pixels (rle with the prompts and engine that made them), a new kind."""

    rle = serializers.JSONField(required=False)
    prompts = serializers.JSONField(required=False)
    engine = serializers.CharField(max_length=80, required=False)
    kind = serializers.ChoiceField(choices=InclusionKind.choices, required=False)


class MaskCreateApi(AnnotatorApi):
    @extend_schema(request=MaskCreateInputSerializer, responses={201: MaskOutputSerializer})
    def post(self, request: Request, uid: str, frame_uid: str) -> Response:
        data = MaskCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            mask = annotation.save_mask(
                uid=uid, annotator=request.user, frame_uid=frame_uid, **data.validated_data
            )
        except ValueError as exc:
            return _bad_input("rle", exc)
        return Response(MaskOutputSerializer(mask).data, status=status.HTTP_201_CREATED)


class MaskDeleteApi(AnnotatorApi):
    """One accepted mask: corrected (PATCH) or deleted."""

    @extend_schema(request=MaskChangeInputSerializer, responses={200: MaskOutputSerializer})
    def patch(self, request: Request, uid: str, mask_uid: str) -> Response:
        data = MaskChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            mask = annotation.change_mask(
                uid=uid, annotator=request.user, mask_uid=mask_uid, **data.validated_data
            )
        except ValueError as exc:
            return _bad_input("rle", exc)
        return Response(MaskOutputSerializer(mask).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, uid: str, mask_uid: str) -> Response:
        annotation.delete_mask(uid=uid, annotator=request.user, mask_uid=mask_uid)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FrameImageApi(AnnotatorApi):
    """The frame's stored bytes (metadata already stripped at ingest), for its holder only."""

    @extend_schema(responses={(200, "image/jpeg"): OpenApiResponse(description="the image")})
    def get(self, request: Request, uid: str, frame_uid: str) -> HttpResponse:
        assignment = annotation.active_assignment(uid=uid, annotator=request.user)
        frame = annotation.assignment_frame(assignment=assignment, frame_uid=frame_uid)
        return frame_image_response(frame=frame)
