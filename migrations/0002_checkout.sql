-- 0002: checkout. One order per producer, delivery addresses, the cart and the order status history.

ALTER TABLE orders
    ADD COLUMN producer_id INT UNSIGNED NULL AFTER customer_id,
    ADD COLUMN delivery_address VARCHAR(500) NULL AFTER order_type,
    ADD COLUMN split_from INT UNSIGNED NULL;

-- Older orders name their producer through their items. An order holding several producers'
-- items keeps the first producer's and is split into one more order for each other producer.
UPDATE orders o
JOIN (SELECT oi.order_id, MIN(p.producer_id) AS producer_id
      FROM order_item oi JOIN product p ON p.product_id = oi.product_id
      GROUP BY oi.order_id) first_producer ON first_producer.order_id = o.order_id
SET o.producer_id = first_producer.producer_id;

INSERT INTO orders (customer_id, producer_id, status, order_type, placed_at, split_from)
SELECT DISTINCT o.customer_id, p.producer_id, o.status, o.order_type, o.placed_at, o.order_id
FROM orders o
JOIN order_item oi ON oi.order_id = o.order_id
JOIN product p ON p.product_id = oi.product_id
WHERE p.producer_id <> o.producer_id;

UPDATE order_item oi
JOIN product p ON p.product_id = oi.product_id
JOIN orders split ON split.split_from = oi.order_id AND split.producer_id = p.producer_id
SET oi.order_id = split.order_id;

ALTER TABLE orders
    DROP COLUMN split_from,
    MODIFY producer_id INT UNSIGNED NOT NULL,
    ADD KEY idx_orders_producer_placed (producer_id, placed_at),
    ADD CONSTRAINT fk_orders_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id);

CREATE TABLE order_status_history (
    history_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id INT UNSIGNED NOT NULL,
    from_status VARCHAR(20) NULL,
    to_status VARCHAR(20) NOT NULL,
    changed_by_role VARCHAR(10) NOT NULL,
    changed_by_id INT UNSIGNED NOT NULL,
    changed_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_history_order (order_id, history_id),
    CONSTRAINT fk_history_order FOREIGN KEY (order_id) REFERENCES orders (order_id) ON DELETE CASCADE,
    CONSTRAINT chk_history_role CHECK (changed_by_role IN ('customer', 'producer'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE cart_item (
    customer_id INT UNSIGNED NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    quantity INT NOT NULL,
    price_when_added DECIMAL(8,2) NOT NULL,
    added_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (customer_id, product_id),
    KEY idx_cart_item_product (product_id),
    CONSTRAINT fk_cart_item_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON DELETE CASCADE,
    CONSTRAINT fk_cart_item_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE,
    CONSTRAINT chk_cart_item_quantity CHECK (quantity > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
