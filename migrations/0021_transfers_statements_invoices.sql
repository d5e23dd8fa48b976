-- 0021: paying by bank transfer (a reference per order), the bank statements the co-op imports and the lines
-- matched from them, payouts to producers, VAT rates per product, and invoices and credit notes numbered per
-- producer per year without gaps, never changed once issued.
CREATE TABLE vat_rate (
    code VARCHAR(10) NOT NULL PRIMARY KEY,
    name VARCHAR(40) NOT NULL,
    percent DECIMAL(5,2) NOT NULL,
    CONSTRAINT chk_vat_rate_percent CHECK (percent >= 0 AND percent < 100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO vat_rate (code, name, percent) VALUES ('zero', 'Zero rate', 0), ('reduced', 'Reduced rate', 5),
    ('standard', 'Standard rate', 20);

ALTER TABLE product ADD COLUMN vat_rate VARCHAR(10) NOT NULL DEFAULT 'zero' AFTER tolerance_percent,
    ADD CONSTRAINT fk_product_vat_rate FOREIGN KEY (vat_rate) REFERENCES vat_rate (code);
ALTER TABLE order_item ADD COLUMN vat_percent DECIMAL(5,2) NOT NULL DEFAULT 0 AFTER line_total;
ALTER TABLE producer ADD COLUMN legal_name VARCHAR(150) NOT NULL DEFAULT '' AFTER fee_percent,
    ADD COLUMN address VARCHAR(500) NOT NULL DEFAULT '' AFTER legal_name,
    ADD COLUMN vat_number VARCHAR(20) NOT NULL DEFAULT '' AFTER address,
    ADD COLUMN invoice_prefix VARCHAR(12) NOT NULL DEFAULT '' AFTER vat_number;

ALTER TABLE fulfilment_option DROP CONSTRAINT chk_option_payment;
ALTER TABLE fulfilment_option
    ADD CONSTRAINT chk_option_payment CHECK (payment_method IN ('collection', 'transfer', 'credit'));
ALTER TABLE orders DROP CONSTRAINT chk_orders_payment_method;
ALTER TABLE orders
    ADD CONSTRAINT chk_orders_payment_method CHECK (payment_method IN ('collection', 'transfer', 'credit'));
ALTER TABLE order_status_history DROP CONSTRAINT chk_history_kind;
ALTER TABLE order_status_history ADD CONSTRAINT chk_history_kind
    CHECK (kind IN ('status', 'payment', 'line', 'shortage', 'when', 'weight', 'refund'));
ALTER TABLE ledger_entry DROP CONSTRAINT chk_ledger_entry_kind;
ALTER TABLE ledger_entry ADD CONSTRAINT chk_ledger_entry_kind
    CHECK (kind IN ('order', 'payment', 'refund', 'topup', 'payout', 'reversal'));

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
