-- 0033: webhooks: endpoints that producers and the operator register, each event once, and one delivery per
-- event and endpoint for the worker to send.
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
