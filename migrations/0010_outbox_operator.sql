-- 0010: email that is never lost, jobs that run once, and the co-op's operator.
-- An outbox of email written with the change it reports; a record of each occurrence whose
-- ordering has closed; operators with an audit of what they do; producers awaiting approval,
-- approved or suspended (existing ones are approved); customers active or suspended, with
-- reminders they can turn off. A product is listed when its producer shows it and is approved.

ALTER TABLE producer
    ADD COLUMN status VARCHAR(12) NOT NULL DEFAULT 'approved',
    ADD KEY idx_producer_status (status, business_name),
    ADD CONSTRAINT chk_producer_status CHECK (status IN ('pending', 'approved', 'suspended'));

ALTER TABLE producer ALTER COLUMN status SET DEFAULT 'pending';

ALTER TABLE customer
    ADD COLUMN status VARCHAR(12) NOT NULL DEFAULT 'active',
    ADD COLUMN reminders TINYINT(1) NOT NULL DEFAULT 1,
    ADD CONSTRAINT chk_customer_status CHECK (status IN ('active', 'suspended'));

ALTER TABLE product
    DROP KEY idx_product_available_name,
    DROP KEY idx_product_available_price,
    DROP KEY idx_product_available_created,
    DROP KEY idx_product_available_category_name,
    DROP KEY idx_product_available_category_price,
    DROP KEY idx_product_available_category_created,
    DROP KEY idx_product_producer_available_name,
    ADD COLUMN producer_ok TINYINT(1) NOT NULL DEFAULT 1,
    ADD COLUMN is_listed TINYINT(1) AS (is_available AND producer_ok) STORED,
    ADD KEY idx_product_listed_name (is_listed, name),
    ADD KEY idx_product_listed_price (is_listed, price),
    ADD KEY idx_product_listed_created (is_listed, created_at),
    ADD KEY idx_product_listed_category_name (is_listed, category, name),
    ADD KEY idx_product_listed_category_price (is_listed, category, price),
    ADD KEY idx_product_listed_category_created (is_listed, category, created_at),
    ADD KEY idx_product_producer_listed_name (producer_id, is_listed, name);

DROP TRIGGER product_count_insert;

DROP TRIGGER product_count_update;

DROP TRIGGER product_count_delete;

CREATE TRIGGER product_count_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available) VALUES (NEW.category, NEW.is_listed)
    ON DUPLICATE KEY UPDATE available = available + NEW.is_listed;

CREATE TRIGGER product_count_update AFTER UPDATE ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available)
    VALUES (OLD.category, -OLD.is_listed), (NEW.category, NEW.is_listed)
    ON DUPLICATE KEY UPDATE available = available + VALUES(available);

CREATE TRIGGER product_count_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_count SET available = available - OLD.is_listed WHERE category = OLD.category;

UPDATE catalogue_count SET available = 0;

INSERT INTO catalogue_count (category, available)
SELECT category, SUM(is_listed) FROM product GROUP BY category
ON DUPLICATE KEY UPDATE available = VALUES(available);

CREATE TRIGGER product_listing_insert BEFORE INSERT ON product FOR EACH ROW
    SET NEW.producer_ok = (SELECT status = 'approved' FROM producer WHERE producer_id = NEW.producer_id);

CREATE TRIGGER producer_listing_update AFTER UPDATE ON producer FOR EACH ROW
    UPDATE product SET producer_ok = (NEW.status = 'approved')
    WHERE producer_id = NEW.producer_id AND OLD.status <> NEW.status;

CREATE TABLE operator (
    operator_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
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
    recipient VARCHAR(254) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    body_text MEDIUMTEXT NOT NULL,
    body_html MEDIUMTEXT NULL,
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

ALTER TABLE orders
    ADD COLUMN reminder_sent_at DATETIME NULL,
    ADD KEY idx_orders_date_status (fulfilment_date, status);
