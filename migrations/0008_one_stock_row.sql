-- 0008: every product has exactly one stock row. uq_stock_product allows at most one; these
-- triggers make one as each product is inserted and refuse to delete it on its own.

INSERT INTO stock (product_id, quantity_available, reorder_threshold)
SELECT p.product_id, 0, 0 FROM product p LEFT JOIN stock s ON s.product_id = p.product_id
WHERE s.product_id IS NULL;

CREATE TRIGGER product_stock_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO stock (product_id) VALUES (NEW.product_id);

-- Deleting the product removes its stock row by ON DELETE CASCADE, which fires no trigger.
CREATE TRIGGER stock_delete_guard BEFORE DELETE ON stock FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'A stock row goes only with its product: delete the product instead.';
