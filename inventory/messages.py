"""The messages the inventory context sends, on inventory_events (key: the order id, or the
product id for the catalogue's own events)."""

EVENTS = {
    "product.created": "id, sku, name, price, stock",
    "product.updated": "id, sku, name, price, stock",
    "product.deleted": "id",
    "stock.reserved": "order_id, lines[{product_id, quantity}]",
    "stock.reservation_refused": "order_id, lines, reason",
    "stock.released": "order_id, lines[{product_id, quantity}]",
    "stock.committed": "order_id, lines[{product_id, quantity}]",
}
