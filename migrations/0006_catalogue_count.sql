-- 0006: exact catalogue counts without scanning: available products per category, kept by triggers.

-- Available products per category, kept exact by the triggers below, so the catalogue's result
-- count is a lookup rather than a scan of every product.
CREATE TABLE catalogue_count (
    category VARCHAR(50) NOT NULL PRIMARY KEY,
    available INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER product_count_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available) VALUES (NEW.category, NEW.is_available)
    ON DUPLICATE KEY UPDATE available = available + NEW.is_available;

CREATE TRIGGER product_count_update AFTER UPDATE ON product FOR EACH ROW
    INSERT INTO catalogue_count (category, available)
    VALUES (OLD.category, -OLD.is_available), (NEW.category, NEW.is_available)
    ON DUPLICATE KEY UPDATE available = available + VALUES(available);

CREATE TRIGGER product_count_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_count SET available = available - OLD.is_available WHERE category = OLD.category;

INSERT INTO catalogue_count (category, available)
SELECT category, SUM(is_available) FROM product GROUP BY category
ON DUPLICATE KEY UPDATE available = VALUES(available);
