-- 0026: the co-op's shared pick-ups (hubs): a place with weekly collection times, a cutoff, a capacity in
-- baskets and a fee per basket, run by the operator. A producer who joins one gets a collection option at
-- the hub (hub_id set) whose weekly times mirror the hub's (fulfilment_slot.hub_slot_id).
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

ALTER TABLE fulfilment_option ADD COLUMN hub_id INT UNSIGNED NULL AFTER producer_id,
    ADD COLUMN drop_off VARCHAR(100) NOT NULL DEFAULT '' AFTER instructions,
    ADD KEY idx_option_hub (hub_id, is_archived),
    ADD CONSTRAINT fk_option_hub FOREIGN KEY (hub_id) REFERENCES hub (hub_id);
ALTER TABLE fulfilment_slot ADD COLUMN hub_slot_id INT UNSIGNED NULL AFTER end_time,
    ADD CONSTRAINT fk_slot_hub_slot FOREIGN KEY (hub_slot_id) REFERENCES hub_slot (hub_slot_id) ON DELETE CASCADE;
