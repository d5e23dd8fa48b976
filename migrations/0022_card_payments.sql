-- 0022: card payments through Stripe. A checkout's card-paid orders wait for their payment (stock and capacity
-- held) under one card_payment; each card the customer submits is one attempt, recorded before Stripe is
-- called; Stripe's webhook events are kept by their id and handled once. The money held at the card
-- processor is a ledger account of its own.
ALTER TABLE fulfilment_option DROP CONSTRAINT chk_option_payment;
ALTER TABLE fulfilment_option
    ADD CONSTRAINT chk_option_payment CHECK (payment_method IN ('collection', 'transfer', 'credit', 'card'));
ALTER TABLE orders DROP CONSTRAINT chk_orders_payment_method;
ALTER TABLE orders
    ADD CONSTRAINT chk_orders_payment_method CHECK (payment_method IN ('collection', 'transfer', 'credit', 'card'));
ALTER TABLE orders DROP CONSTRAINT chk_orders_status;
ALTER TABLE orders ADD CONSTRAINT chk_orders_status CHECK (status IN ('awaiting_payment', 'pending', 'confirmed',
    'ready', 'out_for_delivery', 'completed', 'cancelled'));
ALTER TABLE ledger_account DROP CONSTRAINT chk_ledger_account_kind;
ALTER TABLE ledger_account ADD CONSTRAINT chk_ledger_account_kind
    CHECK (kind IN ('credit', 'receivable', 'producer', 'fees', 'bank', 'card'));

CREATE TABLE card_payment (
    payment_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id INT UNSIGNED NOT NULL,
    checkout_key VARCHAR(43) NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    status VARCHAR(10) NOT NULL DEFAULT 'awaiting',
    hold_until DATETIME NOT NULL,
    intent_id VARCHAR(64) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    settled_at DATETIME NULL,
    UNIQUE KEY uq_card_payment_checkout (customer_id, checkout_key),
    UNIQUE KEY uq_card_payment_intent (intent_id),
    KEY idx_card_payment_status (status, hold_until),
    CONSTRAINT fk_card_payment_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id),
    CONSTRAINT chk_card_payment_status CHECK (status IN ('awaiting', 'paid', 'released')),
    CONSTRAINT chk_card_payment_amount CHECK (amount > 0)
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

ALTER TABLE orders ADD COLUMN card_payment_id INT UNSIGNED NULL AFTER checkout_key,
    ADD CONSTRAINT fk_orders_card_payment FOREIGN KEY (card_payment_id) REFERENCES card_payment (payment_id);

CREATE TABLE stripe_event (
    event_id VARCHAR(64) NOT NULL PRIMARY KEY,
    event_type VARCHAR(64) NOT NULL,
    intent_id VARCHAR(64) NULL,
    outcome VARCHAR(200) NOT NULL DEFAULT '',
    received_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_stripe_event_intent (intent_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
