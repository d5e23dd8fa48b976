-- 0009: producers say where, when and how customers get their food. Producer profiles;
-- collection points and delivery zones with weekly slots, closed dates and bookings per slot;
-- each order keeps what the customer was promised, its fee, and whether it has been paid.

ALTER TABLE producer
    ADD COLUMN description VARCHAR(2000) NOT NULL DEFAULT '',
    ADD COLUMN town VARCHAR(100) NOT NULL DEFAULT '',
    ADD COLUMN phone VARCHAR(40) NOT NULL DEFAULT '',
    ADD COLUMN public_email VARCHAR(254) NOT NULL DEFAULT '',
    ADD COLUMN website VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN payment_info VARCHAR(500) NOT NULL DEFAULT '',
    ADD COLUMN image_url VARCHAR(255) NULL,
    ADD COLUMN thumbnail_url VARCHAR(255) NULL;

CREATE TABLE fulfilment_option (
    option_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    producer_id INT UNSIGNED NOT NULL,
    kind VARCHAR(20) NOT NULL,
    name VARCHAR(100) NOT NULL,
    address VARCHAR(500) NULL,
    instructions VARCHAR(1000) NOT NULL DEFAULT '',
    postcodes VARCHAR(1000) NULL,
    fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    minimum_order DECIMAL(8,2) NOT NULL DEFAULT 0,
    free_over DECIMAL(8,2) NULL,
    cutoff_hours SMALLINT UNSIGNED NOT NULL DEFAULT 24,
    capacity INT UNSIGNED NULL,
    is_active TINYINT(1) NOT NULL DEFAULT 1,
    is_archived TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_option_producer (producer_id, is_archived),
    CONSTRAINT fk_option_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id),
    CONSTRAINT chk_option_kind CHECK (kind IN ('collection', 'delivery')),
    CONSTRAINT chk_option_money CHECK (fee >= 0 AND minimum_order >= 0 AND (free_over IS NULL OR free_over >= 0)),
    CONSTRAINT chk_option_cutoff CHECK (cutoff_hours <= 336),
    CONSTRAINT chk_option_capacity CHECK (capacity IS NULL OR capacity > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE fulfilment_slot (
    slot_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    option_id INT UNSIGNED NOT NULL,
    weekday TINYINT UNSIGNED NOT NULL,
    start_time TIME NOT NULL,
    end_time TIME NOT NULL,
    KEY idx_slot_option (option_id, weekday),
    CONSTRAINT fk_slot_option FOREIGN KEY (option_id) REFERENCES fulfilment_option (option_id) ON DELETE CASCADE,
    CONSTRAINT chk_slot_weekday CHECK (weekday <= 6),
    CONSTRAINT chk_slot_times CHECK (start_time < end_time AND end_time <= '24:00:00')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Orders booked per occurrence of a slot: checkout raises it and cancelling lowers it, under the
-- row's lock, so a slot's capacity holds under concurrent checkouts.
CREATE TABLE slot_booking (
    slot_id INT UNSIGNED NOT NULL,
    slot_date DATE NOT NULL,
    booked INT NOT NULL DEFAULT 0,
    PRIMARY KEY (slot_id, slot_date),
    CONSTRAINT fk_booking_slot FOREIGN KEY (slot_id) REFERENCES fulfilment_slot (slot_id) ON DELETE CASCADE,
    CONSTRAINT chk_booking_booked CHECK (booked >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE producer_closure (
    closure_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    producer_id INT UNSIGNED NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    note VARCHAR(200) NOT NULL DEFAULT '',
    KEY idx_closure_producer (producer_id, end_date),
    CONSTRAINT fk_closure_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id),
    CONSTRAINT chk_closure_dates CHECK (start_date <= end_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What the customer was promised, as it was at checkout: a later edit of the option changes none of it.
-- goods_total and item_count are kept by the order_item triggers below.
ALTER TABLE orders
    ADD COLUMN option_id INT UNSIGNED NULL,
    ADD COLUMN slot_id INT UNSIGNED NULL,
    ADD COLUMN fulfilment_name VARCHAR(100) NULL,
    ADD COLUMN fulfilment_address VARCHAR(500) NULL,
    ADD COLUMN fulfilment_instructions VARCHAR(1000) NULL,
    ADD COLUMN fulfilment_date DATE NULL,
    ADD COLUMN slot_start TIME NULL,
    ADD COLUMN slot_end TIME NULL,
    ADD COLUMN cutoff_hours SMALLINT UNSIGNED NULL,
    ADD COLUMN postcode VARCHAR(12) NULL,
    ADD COLUMN phone VARCHAR(40) NULL,
    ADD COLUMN fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    ADD COLUMN goods_total DECIMAL(10,2) NOT NULL DEFAULT 0,
    ADD COLUMN item_count INT NOT NULL DEFAULT 0,
    ADD COLUMN payment_status VARCHAR(10) NOT NULL DEFAULT 'unpaid',
    ADD COLUMN paid_at DATETIME NULL,
    ADD COLUMN paid_by_id INT UNSIGNED NULL,
    ADD KEY idx_orders_producer_date (producer_id, fulfilment_date),
    ADD KEY idx_orders_producer_payment (producer_id, status, payment_status),
    ADD CONSTRAINT fk_orders_option FOREIGN KEY (option_id) REFERENCES fulfilment_option (option_id),
    ADD CONSTRAINT fk_orders_slot FOREIGN KEY (slot_id) REFERENCES fulfilment_slot (slot_id) ON DELETE SET NULL,
    ADD CONSTRAINT chk_orders_fee CHECK (fee >= 0),
    ADD CONSTRAINT chk_orders_payment CHECK (payment_status IN ('unpaid', 'paid'));

UPDATE orders o JOIN (SELECT order_id, SUM(quantity * unit_price) AS goods, SUM(quantity) AS items
                      FROM order_item GROUP BY order_id) t ON t.order_id = o.order_id
SET o.goods_total = t.goods, o.item_count = t.items;

CREATE TRIGGER order_item_totals_insert AFTER INSERT ON order_item FOR EACH ROW
    UPDATE orders SET goods_total = goods_total + NEW.quantity * NEW.unit_price, item_count = item_count + NEW.quantity
    WHERE order_id = NEW.order_id;

CREATE TRIGGER order_item_totals_update AFTER UPDATE ON order_item FOR EACH ROW
    UPDATE orders SET
        goods_total = goods_total - IF(order_id = OLD.order_id, OLD.quantity * OLD.unit_price, 0)
                                  + IF(order_id = NEW.order_id, NEW.quantity * NEW.unit_price, 0),
        item_count = item_count - IF(order_id = OLD.order_id, OLD.quantity, 0) + IF(order_id = NEW.order_id, NEW.quantity, 0)
    WHERE order_id IN (OLD.order_id, NEW.order_id);

CREATE TRIGGER order_item_totals_delete AFTER DELETE ON order_item FOR EACH ROW
    UPDATE orders SET goods_total = goods_total - OLD.quantity * OLD.unit_price, item_count = item_count - OLD.quantity
    WHERE order_id = OLD.order_id;

-- Payment changes join status changes in each order's history.
ALTER TABLE order_status_history
    ADD COLUMN kind VARCHAR(10) NOT NULL DEFAULT 'status',
    ADD CONSTRAINT chk_history_kind CHECK (kind IN ('status', 'payment'));
