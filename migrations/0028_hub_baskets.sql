-- 0028: one pick-up for a whole basket. A customer's orders from several producers for one hub time are
-- linked by one hub_basket, which carries the hub's fee once and takes one place of the hub's capacity
-- (hub_booking counts baskets per hub time and day). The order that carries the fee keeps it in hub_fee,
-- the co-op's share of its fee.
CREATE TABLE hub_basket (
    basket_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id INT UNSIGNED NOT NULL,
    hub_id INT UNSIGNED NOT NULL,
    hub_slot_id INT UNSIGNED NULL,
    basket_date DATE NOT NULL,
    slot_start TIME NOT NULL,
    slot_end TIME NOT NULL,
    fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    is_released TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_basket_customer (customer_id, basket_date),
    KEY idx_basket_hub_day (hub_id, basket_date),
    CONSTRAINT fk_basket_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id),
    CONSTRAINT fk_basket_hub FOREIGN KEY (hub_id) REFERENCES hub (hub_id),
    CONSTRAINT fk_basket_hub_slot FOREIGN KEY (hub_slot_id) REFERENCES hub_slot (hub_slot_id) ON DELETE SET NULL,
    CONSTRAINT chk_basket_fee CHECK (fee >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE hub_booking (
    hub_slot_id INT UNSIGNED NOT NULL,
    booking_date DATE NOT NULL,
    booked INT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (hub_slot_id, booking_date),
    CONSTRAINT fk_hub_booking_slot FOREIGN KEY (hub_slot_id) REFERENCES hub_slot (hub_slot_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE orders ADD COLUMN basket_id INT UNSIGNED NULL AFTER card_payment_id,
    ADD COLUMN hub_fee DECIMAL(8,2) NOT NULL DEFAULT 0 AFTER basket_id,
    ADD KEY idx_orders_basket (basket_id),
    ADD CONSTRAINT fk_orders_basket FOREIGN KEY (basket_id) REFERENCES hub_basket (basket_id),
    ADD CONSTRAINT chk_orders_hub_fee CHECK (hub_fee >= 0 AND hub_fee <= fee);
