-- 0024: what the reconciliation job last found when it compared a card payment with Stripe and the ledger;
-- a non-empty problem is listed for the operator on /admin/payments.
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
