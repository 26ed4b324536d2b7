"""The shared kernel of this project's contexts: the REST conventions (api, parsers, pagination,
permissions, schema, throttling), money, the service-driven create/update/delete (crud), and the
contexts' admin kit (admin: the read-only ledger admin, the admin of crud rows, status badges).
It knows no context."""
