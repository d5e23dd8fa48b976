-- 0017: orders that change after checkout. The history records each change to a line (the product, its
-- quantity before and after, and why) or its move to another time, and a checkout's one-time key makes a repeated submit place nothing.
ALTER TABLE order_status_history
    ADD COLUMN product_id INT UNSIGNED NULL,
    ADD COLUMN quantity_before INT NULL,
    ADD COLUMN quantity_after INT NULL,
    ADD COLUMN note VARCHAR(500) NULL;
ALTER TABLE order_status_history DROP CONSTRAINT chk_history_kind;
ALTER TABLE order_status_history ADD CONSTRAINT chk_history_kind
    CHECK (kind IN ('status', 'payment', 'line', 'shortage', 'when'));

ALTER TABLE orders ADD COLUMN checkout_key VARCHAR(43) NULL,
    ADD KEY idx_orders_checkout (customer_id, checkout_key);

-- One row per checkout submitted: the second submit of a key waits on the first's row, then finds it taken.
CREATE TABLE checkout_key (
    customer_id INT UNSIGNED NOT NULL,
    checkout_key VARCHAR(43) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (customer_id, checkout_key),
    CONSTRAINT fk_checkout_key_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
