-- 0029: the co-op closes a pick-up on days (a holiday, the hall booked): its times are not offered then,
-- whoever delivers there.
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
