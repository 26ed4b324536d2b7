"""The shared kernel of this project's contexts: the REST conventions (api, parsers, pagination,
permissions, schema, throttling), money, the service-driven create/update/delete (crud) with its
admin, and the participant record (records). It knows no context."""
