-- 0018: food sold by measure or by weight. A product is sold by the unit (as before), by measure (a price
-- per kg, per 100 g, per litre or per unit of count, bought in steps) or by the item priced by weight (a price
-- per kg and an estimated weight per item). Quantities become exact decimals in stock, carts, orders and the
-- history; each order line keeps its own total, rounded once in Python, and how it was sold when ordered.
-- Every existing product stays "by the unit", with its quantities and totals as they were.
ALTER TABLE product
    ADD COLUMN sold_by VARCHAR(10) NOT NULL DEFAULT 'unit' AFTER unit,
    ADD COLUMN measure VARCHAR(10) NULL AFTER sold_by,
    ADD COLUMN step DECIMAL(10,3) NOT NULL DEFAULT 1 AFTER measure,
    ADD COLUMN min_quantity DECIMAL(10,3) NOT NULL DEFAULT 1 AFTER step,
    ADD COLUMN max_quantity DECIMAL(10,3) NULL AFTER min_quantity,
    ADD COLUMN estimated_weight DECIMAL(10,3) NULL AFTER max_quantity,
    ADD COLUMN tolerance_percent DECIMAL(5,2) NOT NULL DEFAULT 10 AFTER estimated_weight,
    -- What a shopper pays for the least they can buy, unrounded, so sorting by price compares like with like.
    ADD COLUMN sort_price DECIMAL(20,7) AS (price * CASE sold_by WHEN 'weighed' THEN estimated_weight
        WHEN 'measure' THEN min_quantity * IF(measure = '100g', 0.01, 1) ELSE 1 END) STORED AFTER tolerance_percent;
ALTER TABLE product
    DROP KEY idx_product_listed_price,
    DROP KEY idx_product_listed_price_desc,
    DROP KEY idx_product_listed_category_price,
    DROP KEY idx_product_listed_category_price_desc,
    ADD KEY idx_product_listed_price (is_listed, out_of_stock, sort_price),
    ADD KEY idx_product_listed_price_desc (is_listed, out_of_stock, sort_price DESC, product_id DESC),
    ADD KEY idx_product_listed_category_price (is_listed, category, out_of_stock, sort_price),
    ADD KEY idx_product_listed_category_price_desc (is_listed, category, out_of_stock, sort_price DESC, product_id DESC),
    ADD CONSTRAINT chk_product_sold_by CHECK (sold_by IN ('unit', 'measure', 'weighed')),
    ADD CONSTRAINT chk_product_measure CHECK ((sold_by = 'measure') = (measure IS NOT NULL)
                                              AND (measure IS NULL OR measure IN ('kg', '100g', 'l', 'count'))),
    ADD CONSTRAINT chk_product_steps CHECK (step > 0 AND min_quantity > 0 AND (max_quantity IS NULL OR max_quantity >= min_quantity)),
    ADD CONSTRAINT chk_product_estimate CHECK ((sold_by = 'weighed') = (estimated_weight IS NOT NULL)
                                               AND (estimated_weight IS NULL OR estimated_weight > 0)),
    ADD CONSTRAINT chk_product_tolerance CHECK (tolerance_percent >= 0 AND tolerance_percent <= 100);

ALTER TABLE stock
    MODIFY quantity_available DECIMAL(12,3) NOT NULL DEFAULT 0,
    MODIFY reorder_threshold DECIMAL(12,3) NOT NULL DEFAULT 5;

ALTER TABLE cart_item MODIFY quantity DECIMAL(12,3) NOT NULL;

-- An order line keeps how it was sold when ordered; weighed lines their estimate per item, tolerance and, once
-- weighed, the line's actual weight. line_total is the line's money, rounded once (measures.line_total).
ALTER TABLE order_item
    MODIFY quantity DECIMAL(12,3) NOT NULL,
    ADD COLUMN sold_by VARCHAR(10) NOT NULL DEFAULT 'unit' AFTER unit_price,
    ADD COLUMN measure VARCHAR(10) NULL AFTER sold_by,
    ADD COLUMN estimated_weight DECIMAL(10,3) NULL AFTER measure,
    ADD COLUMN tolerance_percent DECIMAL(5,2) NULL AFTER estimated_weight,
    ADD COLUMN weight DECIMAL(10,3) NULL AFTER tolerance_percent,
    ADD COLUMN line_total DECIMAL(10,2) NOT NULL DEFAULT 0 AFTER weight,
    ADD CONSTRAINT chk_order_item_sold_by CHECK (sold_by IN ('unit', 'measure', 'weighed')),
    ADD CONSTRAINT chk_order_item_weight CHECK (weight IS NULL OR (sold_by = 'weighed' AND weight > 0));
UPDATE order_item SET line_total = quantity * unit_price;

ALTER TABLE order_status_history
    MODIFY quantity_before DECIMAL(12,3) NULL,
    MODIFY quantity_after DECIMAL(12,3) NULL;
ALTER TABLE order_status_history DROP CONSTRAINT chk_history_kind;
ALTER TABLE order_status_history ADD CONSTRAINT chk_history_kind
    CHECK (kind IN ('status', 'payment', 'line', 'shortage', 'when', 'weight'));

-- Each order's goods total sums its lines' own totals; a line sold by measure counts as one item.
DROP TRIGGER order_item_totals_insert;
DROP TRIGGER order_item_totals_update;
DROP TRIGGER order_item_totals_delete;

CREATE TRIGGER order_item_totals_insert AFTER INSERT ON order_item FOR EACH ROW
    UPDATE orders SET goods_total = goods_total + NEW.line_total,
                      item_count = item_count + IF(NEW.sold_by = 'measure', 1, NEW.quantity)
    WHERE order_id = NEW.order_id;

CREATE TRIGGER order_item_totals_update AFTER UPDATE ON order_item FOR EACH ROW
    UPDATE orders SET
        goods_total = goods_total - IF(order_id = OLD.order_id, OLD.line_total, 0)
                                  + IF(order_id = NEW.order_id, NEW.line_total, 0),
        item_count = item_count - IF(order_id = OLD.order_id, IF(OLD.sold_by = 'measure', 1, OLD.quantity), 0)
                                + IF(order_id = NEW.order_id, IF(NEW.sold_by = 'measure', 1, NEW.quantity), 0)
    WHERE order_id IN (OLD.order_id, NEW.order_id);

CREATE TRIGGER order_item_totals_delete AFTER DELETE ON order_item FOR EACH ROW
    UPDATE orders SET goods_total = goods_total - OLD.line_total,
                      item_count = item_count - IF(OLD.sold_by = 'measure', 1, OLD.quantity)
    WHERE order_id = OLD.order_id;
