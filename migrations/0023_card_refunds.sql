-- 0023: a refund owed to a card, written with its ledger entry in the transaction of the change that causes
-- it; the worker sends it to Stripe once (its id is in the refund's metadata and idempotency key).
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
