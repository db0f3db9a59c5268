"""Gold truth through the API, for a lab system or an admin's script (admins only)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import gold
from labeling.models import GoldSource, Grade
from scrapannot.api import HasRole
from scrapannot.roles import Role


class GoldTruthInputSerializer(serializers.Serializer):
    railcar = serializers.CharField(
        max_length=64, help_text="The railcar's id, uid, or plant id if only one railcar has it."
    )
    contamination_pct = serializers.DecimalField(
        max_digits=4, decimal_places=1, min_value=0, max_value=100
    )
    grade = serializers.ChoiceField(choices=Grade.choices)
    source = serializers.ChoiceField(choices=GoldSource.choices)
    reference = serializers.CharField(max_length=200, required=False, allow_blank=True)


class GoldImportInputSerializer(serializers.Serializer):
    truths = GoldTruthInputSerializer(many=True, allow_empty=False)


class GoldImportOutputSerializer(serializers.Serializer):
    imported = serializers.IntegerField()
    railcars = serializers.ListField(child=serializers.IntegerField())


class GoldImportApi(APIView):
    """Mark railcars gold with their known truth (all or nothing)."""

    permission_classes = [HasRole]
    allowed_roles = (Role.ADMIN,)

    @extend_schema(
        request=GoldImportInputSerializer,
        responses={201: GoldImportOutputSerializer},
        operation_id="gold_import",
    )
    def post(self, request: Request) -> Response:
        data = GoldImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rows = gold.import_gold(
                truths=[gold.GoldTruth(**t) for t in data.validated_data["truths"]],
                actor=request.user,
            )
        except gold.UnknownRailcar as exc:
            return Response({"truths": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        out = {"imported": len(rows), "railcars": [row.railcar_id for row in rows]}
        return Response(GoldImportOutputSerializer(out).data, status=status.HTTP_201_CREATED)
