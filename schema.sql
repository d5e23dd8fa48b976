-- noeari: the full current schema, for a new database.
-- Every change here also ships as a migrations/NNNN_name.sql file for existing databases.

CREATE TABLE schema_migrations (
    filename VARCHAR(255) NOT NULL PRIMARY KEY,
    applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE customer (
    customer_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    first_name VARCHAR(100) NOT NULL,
    email VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    date_joined DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    session_version INT UNSIGNED NOT NULL DEFAULT 1,
    status VARCHAR(12) NOT NULL DEFAULT 'active',
    reminders TINYINT(1) NOT NULL DEFAULT 1,
    UNIQUE KEY uq_customer_email (email),
    CONSTRAINT chk_customer_status CHECK (status IN ('active', 'suspended'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE producer (
    producer_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    business_name VARCHAR(150) NOT NULL,
    email VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    date_joined DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    session_version INT UNSIGNED NOT NULL DEFAULT 1,
    description VARCHAR(2000) NOT NULL DEFAULT '',
    town VARCHAR(100) NOT NULL DEFAULT '',
    phone VARCHAR(40) NOT NULL DEFAULT '',
    public_email VARCHAR(254) NOT NULL DEFAULT '',
    website VARCHAR(255) NOT NULL DEFAULT '',
    payment_info VARCHAR(500) NOT NULL DEFAULT '',
    -- The co-op's fee on this producer's orders, a percentage of goods; NULL takes COOP_FEE_PERCENT.
    fee_percent DECIMAL(5,2) NULL,
    -- What its invoices say: the legal name and address, a VAT number when it has one, and the number prefix
    -- (invoices.py makes one from business_name when it is empty).
    legal_name VARCHAR(150) NOT NULL DEFAULT '',
    address VARCHAR(500) NOT NULL DEFAULT '',
    vat_number VARCHAR(20) NOT NULL DEFAULT '',
    invoice_prefix VARCHAR(12) NOT NULL DEFAULT '',
    image_url VARCHAR(255) NULL,
    thumbnail_url VARCHAR(255) NULL,
    status VARCHAR(12) NOT NULL DEFAULT 'pending',
    UNIQUE KEY uq_producer_email (email),
    KEY idx_producer_status (status, business_name),
    CONSTRAINT chk_producer_status CHECK (status IN ('pending', 'approved', 'suspended')),
    CONSTRAINT chk_producer_fee CHECK (fee_percent IS NULL OR (fee_percent >= 0 AND fee_percent <= 100))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- VAT rates, in one table: a product names its rate, an order line keeps the rate it was sold at.
CREATE TABLE vat_rate (
    code VARCHAR(10) NOT NULL PRIMARY KEY,
    name VARCHAR(40) NOT NULL,
    percent DECIMAL(5,2) NOT NULL,
    CONSTRAINT chk_vat_rate_percent CHECK (percent >= 0 AND percent < 100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO vat_rate (code, name, percent) VALUES ('zero', 'Zero rate', 0), ('reduced', 'Reduced rate', 5),
    ('standard', 'Standard rate', 20);

CREATE TABLE product (
    product_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    producer_id INT UNSIGNED NOT NULL,
    name VARCHAR(255) NOT NULL,
    description TEXT NOT NULL,
    category VARCHAR(50) NOT NULL,
    price DECIMAL(8,2) NOT NULL,
    unit VARCHAR(30) NOT NULL,
    -- How it is sold (measures.py): 'unit', 'measure' (a price per measure, bought in steps of it) or
    -- 'weighed' (a price per kg, ordered by the item, each item about estimated_weight kg).
    sold_by VARCHAR(10) NOT NULL DEFAULT 'unit',
    measure VARCHAR(10) NULL,
    step DECIMAL(10,3) NOT NULL DEFAULT 1,
    min_quantity DECIMAL(10,3) NOT NULL DEFAULT 1,
    max_quantity DECIMAL(10,3) NULL,
    estimated_weight DECIMAL(10,3) NULL,
    tolerance_percent DECIMAL(5,2) NOT NULL DEFAULT 10,
    -- Its VAT rate (vat_rate.code); prices include it.
    vat_rate VARCHAR(10) NOT NULL DEFAULT 'zero',
    -- What a shopper pays for the least they can buy (one item, or the minimum measure), unrounded, so sorting
    -- by price compares like with like; 0.01 is the 100 g measure's (measures.MEASURES).
    sort_price DECIMAL(20,7) AS (price * CASE sold_by WHEN 'weighed' THEN estimated_weight
        WHEN 'measure' THEN min_quantity * IF(measure = '100g', 0.01, 1) ELSE 1 END) STORED,
    image_url VARCHAR(255) NULL,
    thumbnail_url VARCHAR(255) NULL,
    is_available TINYINT(1) NOT NULL DEFAULT 1,
    is_archived TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Listed in the catalogue: shown by the producer, and the producer approved (kept by triggers).
    producer_ok TINYINT(1) NOT NULL DEFAULT 1,
    is_listed TINYINT(1) AS (is_available AND producer_ok) STORED,
    -- Follows the stock row (a trigger keeps it), so every sort lists what can be bought first.
    out_of_stock TINYINT(1) NOT NULL DEFAULT 1,
    -- The stems of the name, of the description and category, and of the producer's name (search.py), which
    -- triggers copy into search_term for searches to read.
    search_name VARCHAR(400) NULL,
    search_text TEXT NULL,
    search_producer VARCHAR(300) NULL,
    KEY idx_product_producer_own (producer_id, is_archived, name),
    KEY idx_product_category (category),
    KEY idx_product_listed_name (is_listed, out_of_stock, name),
    KEY idx_product_listed_price (is_listed, out_of_stock, sort_price),
    KEY idx_product_listed_price_desc (is_listed, out_of_stock, sort_price DESC, product_id DESC),
    KEY idx_product_listed_created (is_listed, out_of_stock, created_at DESC, product_id DESC),
    KEY idx_product_listed_category_name (is_listed, category, out_of_stock, name),
    KEY idx_product_listed_category_price (is_listed, category, out_of_stock, sort_price),
    KEY idx_product_listed_category_price_desc (is_listed, category, out_of_stock, sort_price DESC, product_id DESC),
    KEY idx_product_listed_category_created (is_listed, category, out_of_stock, created_at DESC, product_id DESC),
    KEY idx_product_producer_listed_name (producer_id, is_listed, out_of_stock, name),
    CONSTRAINT fk_product_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id),
    CONSTRAINT fk_product_vat_rate FOREIGN KEY (vat_rate) REFERENCES vat_rate (code),
    CONSTRAINT chk_product_price CHECK (price >= 0),
    CONSTRAINT chk_product_sold_by CHECK (sold_by IN ('unit', 'measure', 'weighed')),
    CONSTRAINT chk_product_measure CHECK ((sold_by = 'measure') = (measure IS NOT NULL)
                                          AND (measure IS NULL OR measure IN ('kg', '100g', 'l', 'count'))),
    CONSTRAINT chk_product_steps CHECK (step > 0 AND min_quantity > 0 AND (max_quantity IS NULL OR max_quantity >= min_quantity)),
    CONSTRAINT chk_product_estimate CHECK ((sold_by = 'weighed') = (estimated_weight IS NOT NULL)
                                           AND (estimated_weight IS NULL OR estimated_weight > 0)),
    CONSTRAINT chk_product_tolerance CHECK (tolerance_percent >= 0 AND tolerance_percent <= 100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE stock (
    stock_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    product_id INT UNSIGNED NOT NULL,
    -- The product's producer, set by a trigger as the row is made (a product never changes producer), so a
    -- producer's products to restock are read from idx_stock_producer_low. The default is never kept: it lets
    -- an INSERT ... SELECT that leaves the column out reach the trigger.
    producer_id INT UNSIGNED NOT NULL DEFAULT 0,
    -- In the product's selling measure: 12.5 (kg) of cheddar, 8 chickens.
    quantity_available DECIMAL(12,3) NOT NULL DEFAULT 0,
    reorder_threshold DECIMAL(12,3) NOT NULL DEFAULT 5,
    is_low TINYINT(1) AS (quantity_available <= reorder_threshold) STORED,
    UNIQUE KEY uq_stock_product (product_id),
    KEY idx_stock_producer_low (producer_id, is_low),
    CONSTRAINT fk_stock_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE,
    CONSTRAINT chk_stock_quantity CHECK (quantity_available >= 0),
    CONSTRAINT chk_stock_threshold CHECK (reorder_threshold >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The co-op's shared pick-ups (hubs.py): many producers' orders collected at one place and time.
CREATE TABLE hub (
    hub_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    address VARCHAR(500) NOT NULL,
    instructions VARCHAR(1000) NOT NULL DEFAULT '',
    contact VARCHAR(200) NOT NULL DEFAULT '',
    cutoff_hours SMALLINT UNSIGNED NOT NULL DEFAULT 24,
    capacity INT UNSIGNED NULL,
    fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    is_active TINYINT(1) NOT NULL DEFAULT 1,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_hub_name (name),
    CONSTRAINT chk_hub_cutoff CHECK (cutoff_hours <= 336),
    CONSTRAINT chk_hub_capacity CHECK (capacity IS NULL OR capacity > 0),
    CONSTRAINT chk_hub_fee CHECK (fee >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE hub_slot (
    hub_slot_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hub_id INT UNSIGNED NOT NULL,
    weekday TINYINT UNSIGNED NOT NULL,
    start_time TIME NOT NULL,
    end_time TIME NOT NULL,
    KEY idx_hub_slot_hub (hub_id, weekday),
    CONSTRAINT fk_hub_slot_hub FOREIGN KEY (hub_id) REFERENCES hub (hub_id),
    CONSTRAINT chk_hub_slot_weekday CHECK (weekday <= 6),
    CONSTRAINT chk_hub_slot_times CHECK (start_time < end_time AND end_time <= '24:00:00')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

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

CREATE TABLE hub_closure (
    closure_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    hub_id INT UNSIGNED NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    note VARCHAR(200) NOT NULL DEFAULT '',
    KEY idx_hub_closure_hub (hub_id, end_date),
    CONSTRAINT fk_hub_closure_hub FOREIGN KEY (hub_id) REFERENCES hub (hub_id),
    CONSTRAINT chk_hub_closure_dates CHECK (start_date <= end_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE fulfilment_option (
    option_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    producer_id INT UNSIGNED NOT NULL,
    -- Set for a producer's place at a co-op hub: its times mirror the hub's.
    hub_id INT UNSIGNED NULL,
    kind VARCHAR(20) NOT NULL,
    name VARCHAR(100) NOT NULL,
    address VARCHAR(500) NULL,
    instructions VARCHAR(1000) NOT NULL DEFAULT '',
    -- At a hub: when the producer brings their orders ("by 09:00 on the day").
    drop_off VARCHAR(100) NOT NULL DEFAULT '',
    postcodes VARCHAR(1000) NULL,
    fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    minimum_order DECIMAL(8,2) NOT NULL DEFAULT 0,
    free_over DECIMAL(8,2) NULL,
    cutoff_hours SMALLINT UNSIGNED NOT NULL DEFAULT 24,
    capacity INT UNSIGNED NULL,
    -- How its orders are paid: on collection or delivery, by bank transfer to the co-op, or from the
    -- customer's credit at checkout.
    payment_method VARCHAR(12) NOT NULL DEFAULT 'collection',
    is_active TINYINT(1) NOT NULL DEFAULT 1,
    is_archived TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_option_producer (producer_id, is_archived),
    KEY idx_option_hub (hub_id, is_archived),
    CONSTRAINT fk_option_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id),
    CONSTRAINT fk_option_hub FOREIGN KEY (hub_id) REFERENCES hub (hub_id),
    CONSTRAINT chk_option_kind CHECK (kind IN ('collection', 'delivery')),
    CONSTRAINT chk_option_money CHECK (fee >= 0 AND minimum_order >= 0 AND (free_over IS NULL OR free_over >= 0)),
    CONSTRAINT chk_option_cutoff CHECK (cutoff_hours <= 336),
    CONSTRAINT chk_option_capacity CHECK (capacity IS NULL OR capacity > 0),
    CONSTRAINT chk_option_payment CHECK (payment_method IN ('collection', 'transfer', 'credit', 'card'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE fulfilment_slot (
    slot_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    option_id INT UNSIGNED NOT NULL,
    weekday TINYINT UNSIGNED NOT NULL,
    start_time TIME NOT NULL,
    end_time TIME NOT NULL,
    -- A hub option's time, mirroring this time of its hub (gone with it).
    hub_slot_id INT UNSIGNED NULL,
    KEY idx_slot_option (option_id, weekday),
    CONSTRAINT fk_slot_option FOREIGN KEY (option_id) REFERENCES fulfilment_option (option_id) ON DELETE CASCADE,
    CONSTRAINT fk_slot_hub_slot FOREIGN KEY (hub_slot_id) REFERENCES hub_slot (hub_slot_id) ON DELETE CASCADE,
    CONSTRAINT chk_slot_weekday CHECK (weekday <= 6),
    CONSTRAINT chk_slot_times CHECK (start_time < end_time AND end_time <= '24:00:00')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE hub_product_exclusion (
    option_id INT UNSIGNED NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    PRIMARY KEY (option_id, product_id),
    KEY idx_hub_exclusion_product (product_id),
    CONSTRAINT fk_hub_exclusion_option FOREIGN KEY (option_id) REFERENCES fulfilment_option (option_id),
    CONSTRAINT fk_hub_exclusion_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE
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

-- Card payments through Stripe (payments.py): a checkout's card-paid orders wait for one payment; each card
-- submitted is one attempt, recorded before Stripe is called.
CREATE TABLE card_payment (
    payment_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id INT UNSIGNED NOT NULL,
    checkout_key VARCHAR(43) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    -- Weighed goods: authorized for the most the orders can cost, captured once every weight is in.
    capture_method VARCHAR(10) NOT NULL DEFAULT 'automatic',
    status VARCHAR(10) NOT NULL DEFAULT 'awaiting',
    hold_until DATETIME NOT NULL,
    intent_id VARCHAR(64) NULL,
    captured_amount DECIMAL(12,2) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    settled_at DATETIME NULL,
    UNIQUE KEY uq_card_payment_checkout (customer_id, checkout_key),
    UNIQUE KEY uq_card_payment_intent (intent_id),
    KEY idx_card_payment_status (status, hold_until),
    CONSTRAINT fk_card_payment_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id),
    CONSTRAINT chk_card_payment_status CHECK (status IN ('awaiting', 'authorized', 'paid', 'released')),
    CONSTRAINT chk_card_payment_amount CHECK (amount > 0),
    CONSTRAINT chk_card_payment_capture CHECK (capture_method IN ('automatic', 'manual'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE card_attempt (
    attempt_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    payment_id INT UNSIGNED NOT NULL,
    card_token VARCHAR(64) NOT NULL,
    intent_id VARCHAR(64) NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'started',
    error VARCHAR(300) NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_card_attempt_token (payment_id, card_token),
    UNIQUE KEY uq_card_attempt_intent (intent_id),
    CONSTRAINT fk_card_attempt_payment FOREIGN KEY (payment_id) REFERENCES card_payment (payment_id),
    CONSTRAINT chk_card_attempt_status CHECK (status IN ('started', 'requires_action', 'succeeded', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
    order_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id INT UNSIGNED NOT NULL,
    producer_id INT UNSIGNED NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    order_type VARCHAR(20) NOT NULL,
    delivery_address VARCHAR(500) NULL,
    placed_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- What the customer was promised, as it was at checkout: a later edit of the option changes none of it.
    option_id INT UNSIGNED NULL,
    slot_id INT UNSIGNED NULL,
    fulfilment_name VARCHAR(100) NULL,
    fulfilment_address VARCHAR(500) NULL,
    fulfilment_instructions VARCHAR(1000) NULL,
    fulfilment_date DATE NULL,
    slot_start TIME NULL,
    slot_end TIME NULL,
    cutoff_hours SMALLINT UNSIGNED NULL,
    postcode VARCHAR(12) NULL,
    phone VARCHAR(40) NULL,
    fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    -- Kept by the order_item triggers at the end of this file.
    goods_total DECIMAL(10,2) NOT NULL DEFAULT 0,
    item_count INT NOT NULL DEFAULT 0,
    payment_status VARCHAR(10) NOT NULL DEFAULT 'unpaid',
    payment_method VARCHAR(12) NOT NULL DEFAULT 'collection',
    -- The co-op's fee rate this order was placed at (ledger.py posts the fee from it).
    coop_fee_percent DECIMAL(5,2) NOT NULL DEFAULT 0,
    paid_at DATETIME NULL,
    paid_by_id INT UNSIGNED NULL,
    reminder_sent_at DATETIME NULL,
    checkout_key VARCHAR(43) NULL,
    -- The card payment a card-paid order waits for (status awaiting_payment) or was paid by.
    card_payment_id INT UNSIGNED NULL,
    basket_id INT UNSIGNED NULL,
    hub_fee DECIMAL(8,2) NOT NULL DEFAULT 0,
    KEY idx_orders_customer_placed (customer_id, placed_at),
    KEY idx_orders_producer_placed (producer_id, placed_at),
    KEY idx_orders_producer_status_placed (producer_id, status, placed_at),
    KEY idx_orders_status (status),
    KEY idx_orders_producer_date (producer_id, fulfilment_date),
    KEY idx_orders_producer_payment (producer_id, status, payment_status),
    KEY idx_orders_date_status (fulfilment_date, status),
    KEY idx_orders_checkout (customer_id, checkout_key),
    KEY idx_orders_basket (basket_id),
    CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id),
    CONSTRAINT fk_orders_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id),
    CONSTRAINT fk_orders_option FOREIGN KEY (option_id) REFERENCES fulfilment_option (option_id),
    CONSTRAINT fk_orders_slot FOREIGN KEY (slot_id) REFERENCES fulfilment_slot (slot_id) ON DELETE SET NULL,
    CONSTRAINT fk_orders_card_payment FOREIGN KEY (card_payment_id) REFERENCES card_payment (payment_id),
    CONSTRAINT fk_orders_basket FOREIGN KEY (basket_id) REFERENCES hub_basket (basket_id),
    CONSTRAINT chk_orders_status CHECK (status IN ('awaiting_payment', 'pending', 'confirmed',
    'ready', 'out_for_delivery', 'completed', 'cancelled')),
    CONSTRAINT chk_orders_type CHECK (order_type IN ('delivery', 'collection')),
    CONSTRAINT chk_orders_fee CHECK (fee >= 0),
    CONSTRAINT chk_orders_payment CHECK (payment_status IN ('unpaid', 'paid')),
    CONSTRAINT chk_orders_payment_method CHECK (payment_method IN ('collection', 'transfer', 'credit', 'card')),
    CONSTRAINT chk_orders_coop_fee CHECK (coop_fee_percent >= 0 AND coop_fee_percent <= 100),
    CONSTRAINT chk_orders_hub_fee CHECK (hub_fee >= 0 AND hub_fee <= fee)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_item (
    order_item_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id INT UNSIGNED NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    quantity DECIMAL(12,3) NOT NULL,
    unit_price DECIMAL(8,2) NOT NULL,
    -- How the line was sold when ordered; a weighed line's estimate per item, tolerance and, once weighed,
    -- the line's actual weight. line_total is the line's money, rounded once (measures.line_total).
    sold_by VARCHAR(10) NOT NULL DEFAULT 'unit',
    measure VARCHAR(10) NULL,
    estimated_weight DECIMAL(10,3) NULL,
    tolerance_percent DECIMAL(5,2) NULL,
    weight DECIMAL(10,3) NULL,
    line_total DECIMAL(10,2) NOT NULL DEFAULT 0,
    -- The line's VAT rate when it was ordered; line_total includes it.
    vat_percent DECIMAL(5,2) NOT NULL DEFAULT 0,
    UNIQUE KEY uq_order_item_product (order_id, product_id),
    KEY idx_order_item_product (product_id),
    CONSTRAINT fk_order_item_order FOREIGN KEY (order_id) REFERENCES orders (order_id) ON DELETE CASCADE,
    CONSTRAINT fk_order_item_product FOREIGN KEY (product_id) REFERENCES product (product_id),
    CONSTRAINT chk_order_item_quantity CHECK (quantity > 0),
    CONSTRAINT chk_order_item_price CHECK (unit_price >= 0),
    CONSTRAINT chk_order_item_sold_by CHECK (sold_by IN ('unit', 'measure', 'weighed')),
    CONSTRAINT chk_order_item_weight CHECK (weight IS NULL OR (sold_by = 'weighed' AND weight > 0))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_status_history (
    history_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id INT UNSIGNED NOT NULL,
    from_status VARCHAR(20) NULL,
    to_status VARCHAR(20) NOT NULL,
    changed_by_role VARCHAR(10) NOT NULL,
    changed_by_id INT UNSIGNED NOT NULL,
    changed_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    kind VARCHAR(10) NOT NULL DEFAULT 'status',
    -- A change to a line: the product, its quantity before and after (0 when the line went), and why; or, for
    -- a move to another time ('when'), the times before and after in note.
    product_id INT UNSIGNED NULL,
    quantity_before DECIMAL(12,3) NULL,
    quantity_after DECIMAL(12,3) NULL,
    note VARCHAR(500) NULL,
    KEY idx_history_order (order_id, history_id),
    CONSTRAINT fk_history_order FOREIGN KEY (order_id) REFERENCES orders (order_id) ON DELETE CASCADE,
    CONSTRAINT chk_history_role CHECK (changed_by_role IN ('customer', 'producer', 'operator')),
    CONSTRAINT chk_history_kind CHECK (kind IN ('status', 'payment', 'line', 'shortage', 'when', 'weight', 'refund'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per checkout submitted: the second submit of a key waits on the first's row, then finds it taken.
CREATE TABLE checkout_key (
    customer_id INT UNSIGNED NOT NULL,
    checkout_key VARCHAR(43) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (customer_id, checkout_key),
    CONSTRAINT fk_checkout_key_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE cart_item (
    customer_id INT UNSIGNED NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    quantity DECIMAL(12,3) NOT NULL,
    price_when_added DECIMAL(8,2) NOT NULL,
    added_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (customer_id, product_id),
    KEY idx_cart_item_product (product_id),
    CONSTRAINT fk_cart_item_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON DELETE CASCADE,
    CONSTRAINT fk_cart_item_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE,
    CONSTRAINT chk_cart_item_quantity CHECK (quantity > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Failed password guesses. client is "device:<id>" for a browser that has logged in to the account
-- before (trusted = 1), else "ip:<address>": one client's guesses never lock out another.
CREATE TABLE login_failure (
    failure_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    ip VARCHAR(45) NOT NULL,
    client VARCHAR(80) NOT NULL DEFAULT '',
    trusted TINYINT(1) NOT NULL DEFAULT 0,
    failed_at DATETIME(6) NOT NULL,
    KEY idx_login_failure_email (email, failed_at),
    KEY idx_login_failure_ip (ip, failed_at),
    KEY idx_login_failure_time (failed_at),
    KEY idx_login_failure_client (email, client, failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- "Forgot password" records a request, the same work for known and unknown emails; the worker
-- answers it, emailing a link only when the email has an account.
CREATE TABLE password_reset_request (
    request_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role ENUM('customer', 'producer', 'operator') NOT NULL,
    email VARCHAR(254) NOT NULL,
    client VARCHAR(80) NOT NULL,
    requested_at DATETIME(6) NOT NULL,
    answered_at DATETIME(6) NULL,
    KEY idx_reset_request_email (email, requested_at),
    KEY idx_reset_request_client (client, requested_at),
    KEY idx_reset_request_waiting (answered_at, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Signups per client, for the signup throttle.
CREATE TABLE signup_attempt (
    attempt_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    client VARCHAR(80) NOT NULL,
    attempted_at DATETIME(6) NOT NULL,
    KEY idx_signup_attempt_client (client, attempted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Listed products per category, kept exact by the triggers below, so the catalogue's result
-- count is a lookup rather than a scan of every product.
CREATE TABLE catalogue_count (
    category VARCHAR(50) NOT NULL PRIMARY KEY,
    available INT NOT NULL DEFAULT 0,
    in_stock INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER product_count_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available, in_stock)
    VALUES (NEW.category, NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE available = available + VALUES(available), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER product_count_update AFTER UPDATE ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available, in_stock)
    VALUES (OLD.category, -OLD.is_listed, -(OLD.is_listed AND NOT OLD.out_of_stock)),
           (NEW.category, NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE available = available + VALUES(available), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER product_count_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_count SET available = available - OLD.is_listed,
                               in_stock = in_stock - (OLD.is_listed AND NOT OLD.out_of_stock)
    WHERE category = OLD.category;

-- Each producer's orders per status, kept exact by the triggers below, so dashboards count
-- without scanning a busy producer's orders. A count is the sum of its shards: each connection
-- counts in its own row (as catalogue_version), so concurrent checkouts for one producer do not
-- queue on one row until they commit. An update that keeps the status and producer counts nothing.
CREATE TABLE order_count (
    producer_id INT UNSIGNED NOT NULL,
    status VARCHAR(20) NOT NULL,
    shard TINYINT UNSIGNED NOT NULL DEFAULT 0,
    n INT NOT NULL DEFAULT 0,
    PRIMARY KEY (producer_id, status, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER order_count_insert AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, shard, n)
    VALUES (NEW.producer_id, NEW.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE n = n + 1;

CREATE TRIGGER order_count_update AFTER UPDATE ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, shard, n)
    SELECT OLD.producer_id, OLD.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, -1
    FROM DUAL WHERE NOT (OLD.status <=> NEW.status AND OLD.producer_id <=> NEW.producer_id)
    UNION ALL
    SELECT NEW.producer_id, NEW.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE NOT (OLD.status <=> NEW.status AND OLD.producer_id <=> NEW.producer_id)
    ON DUPLICATE KEY UPDATE n = n + VALUES(n);

CREATE TRIGGER order_count_delete AFTER DELETE ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, shard, n)
    VALUES (OLD.producer_id, OLD.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, -1)
    ON DUPLICATE KEY UPDATE n = n - 1;

-- Every product has exactly one stock row: uq_stock_product allows at most one, and these
-- triggers make it as the product is inserted and refuse to delete it on its own. Deleting the
-- product removes it by ON DELETE CASCADE, which fires no trigger.
CREATE TRIGGER product_stock_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO stock (product_id) VALUES (NEW.product_id);

CREATE TRIGGER stock_producer BEFORE INSERT ON stock FOR EACH ROW
    SET NEW.producer_id = (SELECT producer_id FROM product WHERE product_id = NEW.product_id);

CREATE TRIGGER stock_delete_guard BEFORE DELETE ON stock FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'A stock row goes only with its product: delete the product instead.';

-- Each order's goods total sums its lines' own totals; a line sold by measure counts as one item.
CREATE TRIGGER order_item_totals_insert AFTER INSERT ON order_item FOR EACH ROW
    UPDATE orders SET goods_total = goods_total + NEW.line_total,
                      item_count = item_count + IF(NEW.sold_by = 'measure', 1, NEW.quantity)
    WHERE order_id = NEW.order_id;

CREATE TRIGGER order_item_totals_update AFTER UPDATE ON order_item FOR EACH ROW
    UPDATE orders SET
        goods_total = goods_total - IF(order_id = OLD.order_id, OLD.line_total, 0)
                                  + IF(order_id = NEW.order_id, NEW.line_total, 0),
        item_count = item_count - IF(order_id = OLD.order_id, IF(OLD.sold_by = 'measure', 1, OLD.quantity), 0)
                                + IF(order_id = NEW.order_id, IF(NEW.sold_by = 'measure', 1, NEW.quantity), 0)
    WHERE order_id IN (OLD.order_id, NEW.order_id);

CREATE TRIGGER order_item_totals_delete AFTER DELETE ON order_item FOR EACH ROW
    UPDATE orders SET goods_total = goods_total - OLD.line_total,
                      item_count = item_count - IF(OLD.sold_by = 'measure', 1, OLD.quantity)
    WHERE order_id = OLD.order_id;

-- A product's producer_ok follows its producer's approval, so only approved producers' products are listed.
CREATE TRIGGER product_listing_insert BEFORE INSERT ON product FOR EACH ROW
    SET NEW.producer_ok = (SELECT status = 'approved' FROM producer WHERE producer_id = NEW.producer_id);

CREATE TRIGGER producer_listing_update AFTER UPDATE ON producer FOR EACH ROW
    UPDATE product SET producer_ok = (NEW.status = 'approved')
    WHERE producer_id = NEW.producer_id AND OLD.status <> NEW.status;

-- Search's index: each stem (of at least 3 letters, as every search term is) of a product's three search
-- columns, one row each, with whether it is in the name, and the product's listing and stock as the sorts
-- read them. A search reads ranges of the primary key (a term as typed is a prefix of its stems), not the
-- products; a word that is the prefix of one stem only reads its page in rank order from idx_search_term_rank.
-- Triggers keep it as the product's search columns, listing and stock change.
CREATE TABLE search_term (
    term VARCHAR(84) NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    in_name TINYINT(1) NOT NULL,
    is_listed TINYINT(1) NOT NULL,
    out_of_stock TINYINT(1) NOT NULL,
    PRIMARY KEY (term, product_id),
    KEY idx_search_term_product (product_id),
    KEY idx_search_term_rank (term, is_listed, out_of_stock, in_name DESC, product_id),
    CONSTRAINT fk_search_term_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER product_terms_insert AFTER INSERT ON product FOR EACH ROW
    INSERT IGNORE INTO search_term (term, product_id, in_name, is_listed, out_of_stock)
    SELECT LEFT(w.term, 84), NEW.product_id, FIND_IN_SET(w.term, REPLACE(NEW.search_name, ' ', ',')) > 0,
           NEW.is_listed, NEW.out_of_stock
    FROM JSON_TABLE(CONCAT('["', REPLACE(CONCAT_WS(' ', NEW.search_name, NEW.search_text, NEW.search_producer),
                                         ' ', '","'), '"]'), '$[*]' COLUMNS (term VARCHAR(400) PATH '$')) w
    WHERE CHAR_LENGTH(w.term) >= 3;

CREATE TRIGGER product_terms_update AFTER UPDATE ON product FOR EACH ROW
    DELETE FROM search_term
    WHERE product_id = NEW.product_id AND NOT (OLD.search_name <=> NEW.search_name
                                               AND OLD.search_text <=> NEW.search_text
                                               AND OLD.search_producer <=> NEW.search_producer);

CREATE TRIGGER product_terms_reindex AFTER UPDATE ON product FOR EACH ROW FOLLOWS product_terms_update
    INSERT IGNORE INTO search_term (term, product_id, in_name, is_listed, out_of_stock)
    SELECT LEFT(w.term, 84), NEW.product_id, FIND_IN_SET(w.term, REPLACE(NEW.search_name, ' ', ',')) > 0,
           NEW.is_listed, NEW.out_of_stock
    FROM JSON_TABLE(CONCAT('["', REPLACE(CONCAT_WS(' ', NEW.search_name, NEW.search_text, NEW.search_producer),
                                         ' ', '","'), '"]'), '$[*]' COLUMNS (term VARCHAR(400) PATH '$')) w
    WHERE CHAR_LENGTH(w.term) >= 3 AND NOT (OLD.search_name <=> NEW.search_name
                                           AND OLD.search_text <=> NEW.search_text
                                           AND OLD.search_producer <=> NEW.search_producer);

CREATE TRIGGER product_terms_listing AFTER UPDATE ON product FOR EACH ROW FOLLOWS product_terms_reindex
    UPDATE search_term SET is_listed = NEW.is_listed, out_of_stock = NEW.out_of_stock
    WHERE product_id = NEW.product_id AND (OLD.is_listed <> NEW.is_listed OR OLD.out_of_stock <> NEW.out_of_stock);

-- Each stem's listed products (and those of them in stock), counted by the triggers below as search_term
-- changes, so a search for a word that begins one stem only reads its total from a few rows. A count is the
-- sum of its shards: each connection counts in its own row (as order_count).
CREATE TABLE search_stem (
    stem VARCHAR(84) NOT NULL,
    shard TINYINT UNSIGNED NOT NULL,
    listed INT NOT NULL DEFAULT 0,
    in_stock INT NOT NULL DEFAULT 0,
    PRIMARY KEY (stem, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER search_stem_insert AFTER INSERT ON search_term FOR EACH ROW
    INSERT INTO search_stem (stem, shard, listed, in_stock)
    VALUES (NEW.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE listed = listed + VALUES(listed), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER search_stem_update AFTER UPDATE ON search_term FOR EACH ROW
    INSERT INTO search_stem (stem, shard, listed, in_stock)
    VALUES (OLD.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            -OLD.is_listed, -(OLD.is_listed AND NOT OLD.out_of_stock)),
           (NEW.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE listed = listed + VALUES(listed), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER search_stem_delete AFTER DELETE ON search_term FOR EACH ROW
    INSERT INTO search_stem (stem, shard, listed, in_stock)
    VALUES (OLD.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            -OLD.is_listed, -(OLD.is_listed AND NOT OLD.out_of_stock))
    ON DUPLICATE KEY UPDATE listed = listed + VALUES(listed), in_stock = in_stock + VALUES(in_stock);

-- A product's stems go by ON DELETE CASCADE, which fires no trigger: deleted first, they are counted out.
CREATE TRIGGER product_terms_delete BEFORE DELETE ON product FOR EACH ROW
    DELETE FROM search_term WHERE product_id = OLD.product_id;

CREATE TABLE operator (
    operator_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    status ENUM('active', 'disabled') NOT NULL DEFAULT 'active',
    session_version INT UNSIGNED NOT NULL DEFAULT 1,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_operator_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE operator_audit (
    audit_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    operator_id INT UNSIGNED NOT NULL,
    action VARCHAR(30) NOT NULL,
    target_type VARCHAR(20) NOT NULL,
    target_id BIGINT UNSIGNED NOT NULL,
    note VARCHAR(500) NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_audit_target (target_type, target_id, audit_id),
    CONSTRAINT fk_audit_operator FOREIGN KEY (operator_id) REFERENCES operator (operator_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every email, written in the same transaction as the change it reports and sent by the worker;
-- dedupe_key makes writing the same message twice a no-op.
CREATE TABLE email_outbox (
    email_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    dedupe_key VARCHAR(190) NOT NULL,
    -- An email promised by what it is about (template, about: its orders' ids) is written, recipient,
    -- subject and body, as the worker sends it (mail.write_promised); any other is written whole at once.
    recipient VARCHAR(254) NULL,
    subject VARCHAR(255) NULL,
    body_text MEDIUMTEXT NULL,
    body_html MEDIUMTEXT NULL,
    template VARCHAR(40) NULL,
    about VARCHAR(255) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    send_after DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    attempts INT NOT NULL DEFAULT 0,
    claimed_by VARCHAR(100) NULL,
    claimed_until DATETIME(6) NULL,
    sent_at DATETIME(6) NULL,
    failed_at DATETIME(6) NULL,
    last_error VARCHAR(1000) NULL,
    UNIQUE KEY uq_outbox_dedupe (dedupe_key),
    KEY idx_outbox_due (sent_at, failed_at, send_after),
    KEY idx_outbox_failed (failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE worker_heartbeat (
    worker_id VARCHAR(100) NOT NULL PRIMARY KEY,
    started_at DATETIME(6) NOT NULL,
    last_seen DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Each occurrence whose ordering has closed and whose packing list went to its producer, once.
CREATE TABLE occurrence_close (
    producer_id INT UNSIGNED NOT NULL,
    option_id INT UNSIGNED NOT NULL,
    fulfilment_date DATE NOT NULL,
    slot_start TIME NOT NULL,
    orders INT NOT NULL,
    processed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (producer_id, option_id, fulfilment_date, slot_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A product is out of stock when its stock row says so.
CREATE TRIGGER stock_sold_out AFTER UPDATE ON stock FOR EACH ROW
    UPDATE product SET out_of_stock = (NEW.quantity_available <= 0)
    WHERE product_id = NEW.product_id AND (OLD.quantity_available <= 0) <> (NEW.quantity_available <= 0);

-- The catalogue's version: the sum of these rows, raised in the same transaction by every change that can
-- alter a page of the catalogue, so a cached page keyed by it is never served after such a change commits.
-- Each connection raises its own row of 16, so concurrent changes (checkouts) do not queue on one row; and each
-- database node has its own 16 (Galera gives each node of a cluster its own auto_increment_offset, while the
-- nodes' connection ids repeat), so two nodes' checkouts never conflict on a row here.
CREATE TABLE catalogue_version (
    shard TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    version BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- Raised by changes of stock alone: the catalogue's version is the sum of both columns, and what does not
    -- show stock (the producers' offers, catalogue.kept_offers) keys on version alone, so it outlives a sale.
    stock_version BIGINT UNSIGNED NOT NULL DEFAULT 0,
    CONSTRAINT chk_catalogue_version_shard CHECK (shard < 128)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO catalogue_version (shard)
    WITH RECURSIVE shards (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM shards WHERE n < 127) SELECT n FROM shards;

CREATE TRIGGER product_changes_catalogue_insert AFTER INSERT ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER product_changes_catalogue_update AFTER UPDATE ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER product_changes_catalogue_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_option_changes_catalogue_insert AFTER INSERT ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_option_changes_catalogue_update AFTER UPDATE ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_option_changes_catalogue_delete AFTER DELETE ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_slot_changes_catalogue_insert AFTER INSERT ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_slot_changes_catalogue_update AFTER UPDATE ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_slot_changes_catalogue_delete AFTER DELETE ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER producer_closure_changes_catalogue_insert AFTER INSERT ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER producer_closure_changes_catalogue_update AFTER UPDATE ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER producer_closure_changes_catalogue_delete AFTER DELETE ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER slot_booking_changes_catalogue_insert AFTER INSERT ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER slot_booking_changes_catalogue_update AFTER UPDATE ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER slot_booking_changes_catalogue_delete AFTER DELETE ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER stock_changes_catalogue_update AFTER UPDATE ON stock FOR EACH ROW
    UPDATE catalogue_version SET stock_version = stock_version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16
      AND NOT (OLD.quantity_available <=> NEW.quantity_available AND OLD.reorder_threshold <=> NEW.reorder_threshold);

CREATE TRIGGER producer_changes_catalogue_insert AFTER INSERT ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

-- Passwords, emails and sessions are not on any page.
CREATE TRIGGER producer_changes_catalogue_update AFTER UPDATE ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16 AND NOT (
            OLD.business_name <=> NEW.business_name
        AND OLD.description <=> NEW.description
        AND OLD.town <=> NEW.town
        AND OLD.phone <=> NEW.phone
        AND OLD.public_email <=> NEW.public_email
        AND OLD.website <=> NEW.website
        AND OLD.payment_info <=> NEW.payment_info
        AND OLD.image_url <=> NEW.image_url
        AND OLD.thumbnail_url <=> NEW.thumbnail_url
        AND OLD.status <=> NEW.status
        AND OLD.date_joined <=> NEW.date_joined);

CREATE TRIGGER producer_changes_catalogue_delete AFTER DELETE ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

-- A hub's closed days, bookings, capacity and fee, and the products it does not take, change what the
-- catalogue offers as a producer's own do.
CREATE TRIGGER hub_changes_catalogue_update AFTER UPDATE ON hub FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_closure_changes_catalogue_insert AFTER INSERT ON hub_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_closure_changes_catalogue_update AFTER UPDATE ON hub_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_closure_changes_catalogue_delete AFTER DELETE ON hub_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_booking_changes_catalogue_insert AFTER INSERT ON hub_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_booking_changes_catalogue_update AFTER UPDATE ON hub_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_booking_changes_catalogue_delete AFTER DELETE ON hub_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_product_exclusion_changes_catalogue_insert AFTER INSERT ON hub_product_exclusion FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_product_exclusion_changes_catalogue_update AFTER UPDATE ON hub_product_exclusion FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_product_exclusion_changes_catalogue_delete AFTER DELETE ON hub_product_exclusion FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

-- A producer's version: the sum of their rows here, raised in the same transaction by every change to what
-- their own pages show (their orders, and through the orders' totals each line of them; their products,
-- stock, and collection and delivery options; their customers' names and emails), so the dashboard and a
-- day's packing list, kept rendered under it (app.render_kept), are never served after such a change commits.
-- Sharded per connection and node as catalogue_version is, a row made the first time it is raised.
CREATE TABLE producer_version (
    producer_id INT UNSIGNED NOT NULL,
    shard TINYINT UNSIGNED NOT NULL,
    version BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (producer_id, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER orders_changes_producer_insert AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

-- A line added, changed or removed updates its order's totals (order_item_totals_*), which fires this, even
-- when the totals come out the same.
CREATE TRIGGER orders_changes_producer_update AFTER UPDATE ON orders FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    UNION ALL
    SELECT OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE OLD.producer_id <> NEW.producer_id
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER orders_changes_producer_delete AFTER DELETE ON orders FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER product_changes_producer_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER product_changes_producer_update AFTER UPDATE ON product FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    UNION ALL
    SELECT OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE OLD.producer_id <> NEW.producer_id
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER product_changes_producer_delete AFTER DELETE ON product FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER stock_changes_producer_update AFTER UPDATE ON stock FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE NOT (OLD.quantity_available <=> NEW.quantity_available
                         AND OLD.reorder_threshold <=> NEW.reorder_threshold AND OLD.producer_id <=> NEW.producer_id)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER fulfilment_option_changes_producer_insert AFTER INSERT ON fulfilment_option FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER fulfilment_option_changes_producer_update AFTER UPDATE ON fulfilment_option FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    UNION ALL
    SELECT OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE OLD.producer_id <> NEW.producer_id
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER fulfilment_option_changes_producer_delete AFTER DELETE ON fulfilment_option FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

-- A customer's name and email are on the packing lists and pending orders of every producer they ordered from.
CREATE TRIGGER customer_changes_producer_update AFTER UPDATE ON customer FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT DISTINCT producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM orders WHERE customer_id = NEW.customer_id
      AND NOT (OLD.first_name <=> NEW.first_name AND OLD.email <=> NEW.email)
    ON DUPLICATE KEY UPDATE version = version + 1;

-- One stored photo: a re-encoded JPEG, named by its URL's last part. Photos are never changed, only
-- added and deleted, so a URL always means the same bytes and can be cached for good.
CREATE TABLE photo (
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    content_type VARCHAR(50) NOT NULL,
    byte_size INT UNSIGNED NOT NULL,
    sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    data MEDIUMBLOB NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_photo_size CHECK (byte_size = LENGTH(data))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One ledger for the co-op's money (ledger.py): entries of two or more legs that sum to zero, over accounts
-- that keep their balances; never updated or deleted, a correction is a reversing entry.
CREATE TABLE ledger_account (
    account_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(20) NOT NULL,
    owner_id INT UNSIGNED NOT NULL DEFAULT 0,
    balance DECIMAL(14,2) NOT NULL DEFAULT 0,
    UNIQUE KEY uq_ledger_account (kind, owner_id),
    CONSTRAINT chk_ledger_account_kind
    CHECK (kind IN ('credit', 'receivable', 'producer', 'fees', 'bank', 'card'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE ledger_entry (
    entry_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(20) NOT NULL,
    order_id INT UNSIGNED NULL,
    note VARCHAR(500) NOT NULL DEFAULT '',
    -- A payment's own reference (a bank transfer's), at most once per kind: the same payment never counts twice.
    reference VARCHAR(100) NULL,
    actor_role VARCHAR(10) NULL,
    actor_id INT UNSIGNED NULL,
    reverses_entry_id BIGINT UNSIGNED NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_ledger_entry_order (order_id, entry_id),
    UNIQUE KEY uq_ledger_entry_reference (kind, reference),
    KEY idx_ledger_entry_reverses (reverses_entry_id),
    CONSTRAINT fk_ledger_entry_order FOREIGN KEY (order_id) REFERENCES orders (order_id),
    CONSTRAINT fk_ledger_entry_reverses FOREIGN KEY (reverses_entry_id) REFERENCES ledger_entry (entry_id),
    CONSTRAINT chk_ledger_entry_kind CHECK (kind IN ('order', 'payment', 'refund', 'topup', 'payout', 'reversal'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE ledger_leg (
    leg_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    entry_id BIGINT UNSIGNED NOT NULL,
    account_id INT UNSIGNED NOT NULL,
    amount DECIMAL(14,2) NOT NULL,
    KEY idx_ledger_leg_entry (entry_id),
    KEY idx_ledger_leg_account (account_id, leg_id),
    CONSTRAINT fk_ledger_leg_entry FOREIGN KEY (entry_id) REFERENCES ledger_entry (entry_id),
    CONSTRAINT fk_ledger_leg_account FOREIGN KEY (account_id) REFERENCES ledger_account (account_id),
    CONSTRAINT chk_ledger_leg_amount CHECK (amount <> 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Append-only: no entry or leg is ever changed or removed. @ledger_purge lets a throwaway test database be
-- emptied between tests; nothing in the app sets it.
CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Ledger entries are never changed: post a reversing entry.';

CREATE TRIGGER ledger_leg_no_update BEFORE UPDATE ON ledger_leg FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Ledger legs are never changed: post a reversing entry.';

CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry FOR EACH ROW
    IF @ledger_purge IS NULL THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Ledger entries are never deleted.'; END IF;

CREATE TRIGGER ledger_leg_no_delete BEFORE DELETE ON ledger_leg FOR EACH ROW
    IF @ledger_purge IS NULL THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Ledger legs are never deleted.'; END IF;

-- Bank statements the operator imports (bank.py): each line once, matched by its payment reference.
CREATE TABLE bank_import (
    import_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    file_name VARCHAR(255) NOT NULL,
    file_sha256 CHAR(64) NOT NULL,
    file_format VARCHAR(10) NOT NULL,
    lines_read INT UNSIGNED NOT NULL DEFAULT 0,
    lines_new INT UNSIGNED NOT NULL DEFAULT 0,
    imported_by INT UNSIGNED NOT NULL,
    imported_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_bank_import_file (file_sha256),
    CONSTRAINT chk_bank_import_format CHECK (file_format IN ('csv', 'camt053'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE bank_line (
    line_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    import_id INT UNSIGNED NOT NULL,
    fingerprint CHAR(64) NOT NULL,
    booked_on DATE NULL,
    amount DECIMAL(14,2) NOT NULL,
    counterparty VARCHAR(200) NOT NULL DEFAULT '',
    details VARCHAR(500) NOT NULL DEFAULT '',
    status VARCHAR(10) NOT NULL DEFAULT 'unmatched',
    order_id INT UNSIGNED NULL,
    customer_id INT UNSIGNED NULL,
    entry_id BIGINT UNSIGNED NULL,
    settled_by_id INT UNSIGNED NULL,
    settled_at DATETIME NULL,
    note VARCHAR(200) NOT NULL DEFAULT '',
    UNIQUE KEY uq_bank_line_fingerprint (fingerprint),
    KEY idx_bank_line_status (status, line_id),
    KEY idx_bank_line_import (import_id, line_id),
    CONSTRAINT fk_bank_line_import FOREIGN KEY (import_id) REFERENCES bank_import (import_id),
    CONSTRAINT fk_bank_line_order FOREIGN KEY (order_id) REFERENCES orders (order_id),
    CONSTRAINT fk_bank_line_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id),
    CONSTRAINT fk_bank_line_entry FOREIGN KEY (entry_id) REFERENCES ledger_entry (entry_id),
    CONSTRAINT chk_bank_line_status CHECK (status IN ('unmatched', 'matched', 'ignored'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Invoices and credit notes (invoices.py): numbered per producer per year without gaps, never changed.
CREATE TABLE invoice_sequence (
    producer_id INT UNSIGNED NOT NULL,
    year SMALLINT UNSIGNED NOT NULL,
    last_number INT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (producer_id, year),
    CONSTRAINT fk_invoice_sequence_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE invoice (
    invoice_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    producer_id INT UNSIGNED NOT NULL,
    year SMALLINT UNSIGNED NOT NULL,
    seq INT UNSIGNED NOT NULL,
    number VARCHAR(40) NOT NULL,
    kind VARCHAR(12) NOT NULL,
    order_id INT UNSIGNED NOT NULL,
    customer_id INT UNSIGNED NOT NULL,
    credits_invoice_id INT UNSIGNED NULL,
    total DECIMAL(12,2) NOT NULL,
    -- Everything the document says (seller, buyer, lines, VAT), as JSON, frozen when it was issued.
    content MEDIUMTEXT NOT NULL,
    issued_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_invoice_sequence (producer_id, year, seq),
    UNIQUE KEY uq_invoice_number (producer_id, number),
    KEY idx_invoice_order (order_id, invoice_id),
    KEY idx_invoice_producer_issued (producer_id, issued_at),
    CONSTRAINT fk_invoice_producer FOREIGN KEY (producer_id) REFERENCES producer (producer_id),
    CONSTRAINT fk_invoice_order FOREIGN KEY (order_id) REFERENCES orders (order_id),
    CONSTRAINT fk_invoice_credits FOREIGN KEY (credits_invoice_id) REFERENCES invoice (invoice_id),
    CONSTRAINT chk_invoice_kind CHECK (kind IN ('invoice', 'credit_note'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER invoice_no_update BEFORE UPDATE ON invoice FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'An issued invoice never changes: issue a credit note.';

CREATE TRIGGER invoice_no_delete BEFORE DELETE ON invoice FOR EACH ROW
    IF @ledger_purge IS NULL THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Invoices are never deleted.'; END IF;

-- Stripe's webhook events, each handled once, by its id.
CREATE TABLE stripe_event (
    event_id VARCHAR(64) NOT NULL PRIMARY KEY,
    event_type VARCHAR(64) NOT NULL,
    intent_id VARCHAR(64) NULL,
    outcome VARCHAR(200) NOT NULL DEFAULT '',
    received_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_stripe_event_intent (intent_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Refunds owed to cards, each sent to Stripe once by the worker (payments.py).
CREATE TABLE card_refund (
    refund_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    payment_id INT UNSIGNED NOT NULL,
    order_id INT UNSIGNED NOT NULL,
    entry_id BIGINT UNSIGNED NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    status VARCHAR(10) NOT NULL DEFAULT 'pending',
    stripe_refund_id VARCHAR(64) NULL,
    error VARCHAR(300) NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    done_at DATETIME NULL,
    UNIQUE KEY uq_card_refund_entry (entry_id),
    KEY idx_card_refund_status (status, refund_id),
    KEY idx_card_refund_order (order_id),
    CONSTRAINT fk_card_refund_payment FOREIGN KEY (payment_id) REFERENCES card_payment (payment_id),
    CONSTRAINT fk_card_refund_order FOREIGN KEY (order_id) REFERENCES orders (order_id),
    CONSTRAINT fk_card_refund_entry FOREIGN KEY (entry_id) REFERENCES ledger_entry (entry_id),
    CONSTRAINT chk_card_refund_status CHECK (status IN ('pending', 'done', 'failed')),
    CONSTRAINT chk_card_refund_amount CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What reconciling each card payment with Stripe and the ledger last found (payments.py).
CREATE TABLE card_check (
    payment_id INT UNSIGNED NOT NULL PRIMARY KEY,
    checked_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    stripe_status VARCHAR(30) NOT NULL DEFAULT '',
    stripe_net DECIMAL(12,2) NOT NULL DEFAULT 0,
    ledger_net DECIMAL(12,2) NOT NULL DEFAULT 0,
    problem VARCHAR(300) NOT NULL DEFAULT '',
    KEY idx_card_check_checked (checked_at),
    CONSTRAINT fk_card_check_payment FOREIGN KEY (payment_id) REFERENCES card_payment (payment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Bearer tokens for the JSON API: only their SHA-256 is kept.
CREATE TABLE api_token (
    token_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role VARCHAR(12) NOT NULL,
    account_id INT UNSIGNED NOT NULL,
    name VARCHAR(100) NOT NULL DEFAULT '',
    token_hash CHAR(64) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at DATETIME NOT NULL,
    last_used_at DATETIME NULL,
    revoked_at DATETIME NULL,
    UNIQUE KEY uq_api_token_hash (token_hash),
    KEY idx_api_token_account (role, account_id, revoked_at),
    CONSTRAINT chk_api_token_role CHECK (role IN ('customer', 'producer', 'operator'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Each API token's requests in the current minute, for its rate limit.
CREATE TABLE api_rate (
    token_id INT UNSIGNED NOT NULL PRIMARY KEY,
    window_start DATETIME NOT NULL,
    requests INT UNSIGNED NOT NULL DEFAULT 0,
    CONSTRAINT fk_api_rate_token FOREIGN KEY (token_id) REFERENCES api_token (token_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Webhook endpoints: a producer's (their own orders and products) or the operator's (everyone's). The secret
-- signs each delivery, so it is kept as given; events is a comma-separated list of event types.
CREATE TABLE webhook_endpoint (
    endpoint_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role VARCHAR(12) NOT NULL,
    account_id INT UNSIGNED NOT NULL,
    url VARCHAR(500) NOT NULL,
    events VARCHAR(500) NOT NULL,
    secret VARCHAR(100) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_webhook_endpoint_owner (role, account_id),
    CONSTRAINT chk_webhook_endpoint_role CHECK (role IN ('producer', 'operator'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Each event once: written in the transaction of the change it reports; dedupe_key makes a repeat a no-op.
CREATE TABLE webhook_event (
    event_id CHAR(36) NOT NULL PRIMARY KEY,
    dedupe_key VARCHAR(190) NOT NULL,
    event_type VARCHAR(40) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_webhook_event_dedupe (dedupe_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One delivery per event and endpoint, claimed and sent by the worker, retried with backoff.
CREATE TABLE webhook_delivery (
    delivery_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id CHAR(36) NOT NULL,
    endpoint_id INT UNSIGNED NOT NULL,
    send_after DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    attempts INT NOT NULL DEFAULT 0,
    claimed_by VARCHAR(100) NULL,
    claimed_until DATETIME(6) NULL,
    delivered_at DATETIME(6) NULL,
    failed_at DATETIME(6) NULL,
    last_status SMALLINT NULL,
    last_error VARCHAR(1000) NULL,
    UNIQUE KEY uq_webhook_delivery (event_id, endpoint_id),
    KEY idx_webhook_delivery_due (delivered_at, failed_at, send_after),
    KEY idx_webhook_delivery_endpoint (endpoint_id, delivery_id),
    CONSTRAINT fk_webhook_delivery_event FOREIGN KEY (event_id) REFERENCES webhook_event (event_id),
    CONSTRAINT fk_webhook_delivery_endpoint FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoint (endpoint_id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
