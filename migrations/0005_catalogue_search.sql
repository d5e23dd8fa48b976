-- 0005: catalogue at scale. FULLTEXT search over product name and description and producer name,
-- and an index for each catalogue sort, with and without a category, plus producers' own listings.

ALTER TABLE product
    ADD KEY idx_product_available_price (is_available, price),
    ADD KEY idx_product_available_created (is_available, created_at),
    ADD KEY idx_product_available_category_name (is_available, category, name),
    ADD KEY idx_product_available_category_price (is_available, category, price),
    ADD KEY idx_product_available_category_created (is_available, category, created_at),
    ADD KEY idx_product_producer_available_name (producer_id, is_available, name);

ALTER TABLE product ADD FULLTEXT KEY ft_product_text (name, description);

ALTER TABLE producer ADD FULLTEXT KEY ft_producer_name (business_name);
