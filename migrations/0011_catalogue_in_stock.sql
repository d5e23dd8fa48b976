-- 0011: in-stock products first. product.out_of_stock follows its stock row (a trigger keeps it);
-- every listing index leads with it, so each sort shows what can be bought before what cannot, from
-- the index; and catalogue_count also counts the listed products in stock, for the in-stock filter.

ALTER TABLE product
    ADD COLUMN out_of_stock TINYINT(1) NOT NULL DEFAULT 1,
    DROP KEY idx_product_listed_name,
    DROP KEY idx_product_listed_price,
    DROP KEY idx_product_listed_created,
    DROP KEY idx_product_listed_category_name,
    DROP KEY idx_product_listed_category_price,
    DROP KEY idx_product_listed_category_created,
    DROP KEY idx_product_producer_listed_name,
    ADD KEY idx_product_listed_name (is_listed, out_of_stock, name),
    ADD KEY idx_product_listed_price (is_listed, out_of_stock, price),
    ADD KEY idx_product_listed_price_desc (is_listed, out_of_stock, price DESC, product_id DESC),
    ADD KEY idx_product_listed_created (is_listed, out_of_stock, created_at DESC, product_id DESC),
    ADD KEY idx_product_listed_category_name (is_listed, category, out_of_stock, name),
    ADD KEY idx_product_listed_category_price (is_listed, category, out_of_stock, price),
    ADD KEY idx_product_listed_category_price_desc (is_listed, category, out_of_stock, price DESC, product_id DESC),
    ADD KEY idx_product_listed_category_created (is_listed, category, out_of_stock, created_at DESC, product_id DESC),
    ADD KEY idx_product_producer_listed_name (producer_id, is_listed, out_of_stock, name);

UPDATE product p JOIN stock s ON s.product_id = p.product_id SET p.out_of_stock = (s.quantity_available <= 0);

CREATE TRIGGER stock_sold_out AFTER UPDATE ON stock FOR EACH ROW
    UPDATE product SET out_of_stock = (NEW.quantity_available <= 0)
    WHERE product_id = NEW.product_id AND (OLD.quantity_available <= 0) <> (NEW.quantity_available <= 0);

ALTER TABLE catalogue_count ADD COLUMN in_stock INT NOT NULL DEFAULT 0;

DROP TRIGGER product_count_insert;

DROP TRIGGER product_count_update;

DROP TRIGGER product_count_delete;

CREATE TRIGGER product_count_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available, in_stock)
    VALUES (NEW.category, NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE available = available + VALUES(available), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER product_count_update AFTER UPDATE ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available, in_stock)
    VALUES (OLD.category, -OLD.is_listed, -(OLD.is_listed AND NOT OLD.out_of_stock)),
           (NEW.category, NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE available = available + VALUES(available), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER product_count_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_count SET available = available - OLD.is_listed,
                               in_stock = in_stock - (OLD.is_listed AND NOT OLD.out_of_stock)
    WHERE category = OLD.category;

UPDATE catalogue_count SET available = 0, in_stock = 0;

INSERT INTO catalogue_count (category, available, in_stock)
SELECT category, SUM(is_listed), SUM(is_listed AND NOT out_of_stock) FROM product GROUP BY category
ON DUPLICATE KEY UPDATE available = VALUES(available), in_stock = VALUES(in_stock);
