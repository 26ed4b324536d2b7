"""The engine's admin: every saga with its timeline and diagram, the operator actions (retry,
compensate, rewind, resolve; replay or discard a dead letter), the outbox, the inbox and the
audit trail, and a dashboard on the admin index.

Nothing here is edited by hand: a saga, a message or an audit row is shown, and changes only
through the operator actions, which go through `saga.services` (permission, audit, idempotency).

    sagas          the saga list and a saga's page, with the operator actions on sagas
      saga_actions   what each action does and which a saga's state allows
      page           the saga's page: facts, diagram, data, buttons
      timeline       the page's timeline of attempts and operator actions
    dead_letters   the dead letters, replayed or discarded by an operator
    operate        what the operated admins share: the form, the confirmation page, the report
    filters        the list filters of sagas and dead letters
    outbox, inbox, audit   the ledger of messages out, messages in, operator actions
"""

from django.contrib import admin

from saga.operator.admin import audit, dead_letters, inbox, outbox, sagas
from saga.operator.admin.dead_letters import DEAD_LETTER_ACTIONS
from saga.operator.admin.saga_actions import ACTIONS

__all__ = ["ACTIONS", "DEAD_LETTER_ACTIONS", "audit", "dead_letters", "inbox", "outbox", "sagas"]

# The admin index shows the engine's dashboard, unless the project has an index of its own.
if admin.site.index_template is None:
    admin.site.index_template = "admin/saga_index.html"
