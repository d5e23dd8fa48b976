-- 0038: a producer's products to restock are read from an index of the few at or below their reorder
-- threshold, not from every product they sell: each stock row names its product's producer (set by a trigger
-- as the row is made; a product never changes producer) and whether it is low. A producer's own product list
-- reads its page in name order from an index, and counts from it.
ALTER TABLE stock ADD COLUMN producer_id INT UNSIGNED NULL AFTER product_id,
    ADD COLUMN is_low TINYINT(1) AS (quantity_available <= reorder_threshold) STORED;

-- The stock triggers change product rows, so the statement that fills the new column must not read product.
CREATE TEMPORARY TABLE product_owner AS SELECT product_id, producer_id FROM product;
UPDATE stock s JOIN product_owner o ON o.product_id = s.product_id SET s.producer_id = o.producer_id;
DROP TEMPORARY TABLE product_owner;

ALTER TABLE stock MODIFY producer_id INT UNSIGNED NOT NULL DEFAULT 0, ADD KEY idx_stock_producer_low (producer_id, is_low);

CREATE TRIGGER stock_producer BEFORE INSERT ON stock FOR EACH ROW
    SET NEW.producer_id = (SELECT producer_id FROM product WHERE product_id = NEW.product_id);

ALTER TABLE product DROP KEY idx_product_producer, ADD KEY idx_product_producer_own (producer_id, is_archived, name);
