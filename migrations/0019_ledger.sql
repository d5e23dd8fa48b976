-- 0019: one ledger for the co-op's money. Each entry has two or more legs that sum to zero, over accounts
-- (a customer's credit, what a customer owes for orders, what the co-op owes a producer, the co-op's fees, its
-- bank); each account keeps its balance, written with the legs. Entries and legs are never updated or
-- deleted: a correction is a reversing entry.
CREATE TABLE ledger_account (
    account_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(20) NOT NULL,
    owner_id INT UNSIGNED NOT NULL DEFAULT 0,
    balance DECIMAL(14,2) NOT NULL DEFAULT 0,
    UNIQUE KEY uq_ledger_account (kind, owner_id),
    CONSTRAINT chk_ledger_account_kind CHECK (kind IN ('credit', 'receivable', 'producer', 'fees', 'bank'))
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
    CONSTRAINT chk_ledger_entry_kind CHECK (kind IN ('order', 'payment', 'refund', 'topup', 'reversal'))
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

-- How an order is paid, chosen per option by its producer: on collection or delivery (recorded by the
-- producer), or from the customer's credit with the co-op (paid at checkout). An order keeps the way it was
-- placed with.
ALTER TABLE fulfilment_option ADD COLUMN payment_method VARCHAR(12) NOT NULL DEFAULT 'collection' AFTER capacity,
    ADD CONSTRAINT chk_option_payment CHECK (payment_method IN ('collection', 'credit'));
ALTER TABLE orders ADD COLUMN payment_method VARCHAR(12) NOT NULL DEFAULT 'collection' AFTER payment_status,
    ADD CONSTRAINT chk_orders_payment_method CHECK (payment_method IN ('collection', 'credit'));

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
