"""The messages the payments context sends, on payment_events (key: the order id). Its commands
and their replies are declared with it as a participant (participant.py)."""

EVENTS = {
    "payment.authorized": "order_id, customer_id, amount",
    "payment.declined": "order_id, customer_id, amount, reason",
    "payment.voided": "order_id, customer_id, amount",
    "payment.captured": "order_id, customer_id, amount",
}
