"""The OpenAPI schema's generator (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]): drf-spectacular's, naming each nested
Input/Output serializer after its view ("SaleBatchView.Input" → "SaleBatchInput"), since every view has its own
and their short names collide."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction):
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer:
            return super().get_serializer_name(serializer, direction)
        return "".join(part.removesuffix("View") for part in outer.split(".")) + inner
