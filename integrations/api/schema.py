"""The OpenAPI schema's generator (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]): drf-spectacular's, with two changes:

- each nested Input/Output serializer is named after its view ("SaleBatchView.Input" → "SaleBatchInput"), since
  every view has its own and their short names collide;
- a view's main response is its lowest 2xx one: drf-spectacular takes the lowest status code as text, which the
  problem responses' (status, content type) keys would win, hiding that a list view answers a page of rows (and so
  its cursor, limit and filter parameters)."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction):
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer:
            return super().get_serializer_name(serializer, direction)
        return "".join(part.removesuffix("View") for part in outer.split(".")) + inner

    def _is_list_view(self, serializer=None) -> bool:
        if serializer is None:
            responses = self.get_response_serializers()
            if isinstance(responses, dict):
                success = {
                    (code[0] if isinstance(code, tuple) else int(code)): value
                    for code, value in responses.items()
                    if 200 <= (code[0] if isinstance(code, tuple) else int(code)) < 300
                }
                if success:
                    serializer = success[min(success)]
        return super()._is_list_view(serializer)
