"""The shared kernel of this project's contexts: the REST conventions (api, parsers, pagination,
permissions, schema, throttling), money, and the service-driven create/update/delete (crud) with
its admin. It knows no context."""
