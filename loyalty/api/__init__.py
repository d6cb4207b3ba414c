"""loyalty's operations of the REST API (/api/v1/): views over its services and selectors (integrations.api.base)."""
