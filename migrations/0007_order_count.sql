-- 0007: producers' order counts per status without scanning their orders, kept by triggers.

-- Each producer's orders per status, kept exact by the triggers below, so dashboards count
-- without scanning a busy producer's orders. Statuses only move forward, so the update
-- trigger always locks its two rows in the same order and cannot deadlock with another.
CREATE TABLE order_count (
    producer_id INT UNSIGNED NOT NULL,
    status VARCHAR(20) NOT NULL,
    n INT NOT NULL DEFAULT 0,
    PRIMARY KEY (producer_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER order_count_insert AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, n) VALUES (NEW.producer_id, NEW.status, 1)
    ON DUPLICATE KEY UPDATE n = n + 1;

CREATE TRIGGER order_count_update AFTER UPDATE ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, n)
    VALUES (OLD.producer_id, OLD.status, -1), (NEW.producer_id, NEW.status, 1)
    ON DUPLICATE KEY UPDATE n = n + VALUES(n);

CREATE TRIGGER order_count_delete AFTER DELETE ON orders FOR EACH ROW
    UPDATE order_count SET n = n - 1 WHERE producer_id = OLD.producer_id AND status = OLD.status;

INSERT INTO order_count (producer_id, status, n)
SELECT producer_id, status, COUNT(*) FROM orders GROUP BY producer_id, status
ON DUPLICATE KEY UPDATE n = VALUES(n);
