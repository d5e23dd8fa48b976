-- 0030: a producer at a co-op hub offers all their products there by default; the ones they do not bring
-- there are kept here, per their option at the hub.
CREATE TABLE hub_product_exclusion (
    option_id INT UNSIGNED NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    PRIMARY KEY (option_id, product_id),
    KEY idx_hub_exclusion_product (product_id),
    CONSTRAINT fk_hub_exclusion_option FOREIGN KEY (option_id) REFERENCES fulfilment_option (option_id),
    CONSTRAINT fk_hub_exclusion_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
