-- 0003: producer workspace. Image thumbnails, archived products (ordered ones are archived, not
-- deleted, so order history keeps them), and an index for a producer's orders filtered by status.

ALTER TABLE product
    ADD COLUMN thumbnail_url VARCHAR(255) NULL AFTER image_url,
    ADD COLUMN is_archived TINYINT(1) NOT NULL DEFAULT 0 AFTER is_available;

ALTER TABLE orders
    ADD KEY idx_orders_producer_status_placed (producer_id, status, placed_at);
