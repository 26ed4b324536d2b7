"""The messages the customers context sends, on customer_events (key: the order id, or the
customer id for the account's own events)."""

EVENTS = {
    "customer.created": "id, name, email, balance, blocked",
    "customer.updated": "id, name, email, balance, blocked",
    "customer.deleted": "id",
    "funds.held": "order_id, customer_id, amount",
    "funds.hold_refused": "order_id, customer_id, amount, reason",
    "funds.released": "order_id, customer_id, amount",
    "funds.consumed": "order_id, customer_id, amount",
}
