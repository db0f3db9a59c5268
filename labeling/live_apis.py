"""The plant-facing API for an unloading posted layer by layer: open, append frames, close
(docs/unloading-format.md). The domain rules are in `labeling.live_ingest`."""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.apis import (
    ErrorSerializer,
    RejectedFrameSerializer,
    frame_files,
    not_your_line,
    read_manifest,
)
from labeling.ingest import UnloadingConflict
from labeling.lines import POST_UNLOADINGS, line_names, may
from labeling.live_ingest import BadAppend, append_frames, close_unloading, open_unloading
from labeling.manifest import AwareDateTimeField, FrameEntrySerializer, _identifier
from labeling.models import Railcar
from scrapannot.api import HasRole
from scrapannot.roles import Role

COMMON_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, "no or bad token"),
    403: OpenApiResponse(ErrorSerializer, "not a plant system or an admin, or a line not granted"),
    503: OpenApiResponse(ErrorSerializer, "database unavailable; retry (Retry-After)"),
}


class UnloadingOpenInputSerializer(serializers.Serializer):
    railcar = _identifier(64)
    line = _identifier(32)
    camera = _identifier(64)
    started_at = AwareDateTimeField(help_text="When the unloading started (ISO 8601, with zone).")


class UnloadingStateSerializer(serializers.Serializer):
    railcar = serializers.UUIDField(source="uid")
    status = serializers.CharField()
    frames = serializers.SerializerMethodField()
    layers = serializers.SerializerMethodField()

    def get_frames(self, railcar: Railcar) -> int:
        return railcar.frames.count()

    def get_layers(self, railcar: Railcar) -> int:
        return railcar.layers.count()


class AppendManifestSerializer(serializers.Serializer):
    """The `manifest` part of an append: frames as in a whole manifest, each naming its layer."""

    frames = FrameEntrySerializer(many=True, allow_empty=False)

    def validate_frames(self, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = settings.SCRAPANNOT["MAX_FRAMES_PER_UNLOADING"]
        if len(frames) > limit:
            raise serializers.ValidationError(f"At most {limit} frames per unloading.")
        seen: set[str] = set()
        for position, frame in enumerate(frames):
            if "layer" not in frame:
                raise serializers.ValidationError(
                    f"frames[{position}].layer: an appended frame names its layer."
                )
            if frame["file"] in seen:
                raise serializers.ValidationError(
                    f"frames[{position}].file: {frame['file']!r} is listed twice."
                )
            seen.add(frame["file"])
            if position and frame["captured_at"] < frames[position - 1]["captured_at"]:
                raise serializers.ValidationError(
                    f"frames[{position}].captured_at: frames must be in time order."
                )
        return frames


class AppendOutputSerializer(serializers.Serializer):
    railcar = serializers.UUIDField(source="railcar.uid")
    appended = serializers.IntegerField(help_text="Frames stored by this request (0: a retry).")
    eligible = serializers.IntegerField()
    layers = serializers.ListField(child=serializers.IntegerField())
    keyframes = serializers.ListField(
        child=serializers.IntegerField(), help_text="Layers with an eligible keyframe now."
    )
    rejected = RejectedFrameSerializer(many=True)


def _open_railcar(request: Request, uid: UUID) -> Railcar:
    """The unloading, if it is one of this account's lines; otherwise the same 404 as for an
    unloading that does not exist."""
    railcars = Railcar.objects.filter(uid=uid)
    names = line_names(request.user, POST_UNLOADINGS)
    if names is not None:
        railcars = railcars.filter(line__in=names)
    railcar = railcars.first()
    if railcar is None:
        raise Http404("No such unloading.")
    return railcar


class UnloadingOpenApi(APIView):
    allowed_roles = (Role.PLANT_SYSTEM, Role.ADMIN)
    permission_classes = [HasRole]
    parser_classes = [parsers.JSONParser]

    @extend_schema(
        request=UnloadingOpenInputSerializer,
        responses={
            201: UnloadingStateSerializer,
            200: OpenApiResponse(UnloadingStateSerializer, "opened before (same identity)"),
            400: OpenApiResponse(description="field errors"),
            409: OpenApiResponse(ErrorSerializer, "this identity was posted whole"),
            **COMMON_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = UnloadingOpenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not may(request.user, POST_UNLOADINGS, data["line"]):
            return not_your_line(data["line"])
        try:
            result = open_unloading(
                real_id=data["railcar"],
                line=data["line"],
                camera=data["camera"],
                started_at=data["started_at"],
                actor=request.user,
            )
        except UnloadingConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(
            UnloadingStateSerializer(result.railcar).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class UnloadingAppendApi(APIView):
    allowed_roles = (Role.PLANT_SYSTEM, Role.ADMIN)
    permission_classes = [HasRole]
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": AppendManifestSerializer},
        responses={
            201: AppendOutputSerializer,
            200: OpenApiResponse(AppendOutputSerializer, "every frame was appended before"),
            400: OpenApiResponse(description="field errors, or frames that do not continue it"),
            404: OpenApiResponse(ErrorSerializer, "no such unloading (for this account)"),
            409: OpenApiResponse(ErrorSerializer, "closed, or a frame sent with other content"),
            **COMMON_ERRORS,
        },
    )
    def post(self, request: Request, uid: UUID) -> Response:
        railcar = _open_railcar(request, uid)
        serializer = AppendManifestSerializer(data=read_manifest(request))
        serializer.is_valid(raise_exception=True)
        entries = serializer.validated_data["frames"]
        files = frame_files(request, {entry["file"] for entry in entries})
        try:
            result = append_frames(
                railcar=railcar, entries=entries, sources=files, actor=request.user
            )
        except UnloadingConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except BadAppend as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            AppendOutputSerializer(result).data,
            status=status.HTTP_201_CREATED if result.appended else status.HTTP_200_OK,
        )


class UnloadingCloseApi(APIView):
    allowed_roles = (Role.PLANT_SYSTEM, Role.ADMIN)
    permission_classes = [HasRole]

    @extend_schema(
        request=None,
        responses={
            200: UnloadingStateSerializer,
            404: OpenApiResponse(ErrorSerializer, "no such unloading (for this account)"),
            409: OpenApiResponse(ErrorSerializer, "no frames were appended"),
            **COMMON_ERRORS,
        },
    )
    def post(self, request: Request, uid: UUID) -> Response:
        railcar = _open_railcar(request, uid)
        try:
            railcar = close_unloading(railcar=railcar, actor=request.user)
        except BadAppend as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(UnloadingStateSerializer(railcar).data)
