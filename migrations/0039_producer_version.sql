-- 0039: a producer's own pages (the dashboard, a day's packing list) are kept rendered under the producer's
-- version, which these triggers raise in the transaction of every change the pages show.
-- A producer's version: the sum of their rows here, raised in the same transaction by every change to what
-- their own pages show (their orders, and through the orders' totals each line of them; their products,
-- stock, and collection and delivery options; their customers' names and emails), so the dashboard and a
-- day's packing list, kept rendered under it (app.render_kept), are never served after such a change commits.
-- Sharded per connection and node as catalogue_version is, a row made the first time it is raised.
CREATE TABLE producer_version (
    producer_id INT UNSIGNED NOT NULL,
    shard TINYINT UNSIGNED NOT NULL,
    version BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (producer_id, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER orders_changes_producer_insert AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

-- A line added, changed or removed updates its order's totals (order_item_totals_*), which fires this, even
-- when the totals come out the same.
CREATE TRIGGER orders_changes_producer_update AFTER UPDATE ON orders FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    UNION ALL
    SELECT OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE OLD.producer_id <> NEW.producer_id
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER orders_changes_producer_delete AFTER DELETE ON orders FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER product_changes_producer_insert AFTER INSERT ON product FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER product_changes_producer_update AFTER UPDATE ON product FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    UNION ALL
    SELECT OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE OLD.producer_id <> NEW.producer_id
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER product_changes_producer_delete AFTER DELETE ON product FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER stock_changes_producer_update AFTER UPDATE ON stock FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE NOT (OLD.quantity_available <=> NEW.quantity_available
                         AND OLD.reorder_threshold <=> NEW.reorder_threshold AND OLD.producer_id <=> NEW.producer_id)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER fulfilment_option_changes_producer_insert AFTER INSERT ON fulfilment_option FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER fulfilment_option_changes_producer_update AFTER UPDATE ON fulfilment_option FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT NEW.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    UNION ALL
    SELECT OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE OLD.producer_id <> NEW.producer_id
    ON DUPLICATE KEY UPDATE version = version + 1;

CREATE TRIGGER fulfilment_option_changes_producer_delete AFTER DELETE ON fulfilment_option FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    VALUES (OLD.producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE version = version + 1;

-- A customer's name and email are on the packing lists and pending orders of every producer they ordered from.
CREATE TRIGGER customer_changes_producer_update AFTER UPDATE ON customer FOR EACH ROW
    INSERT INTO producer_version (producer_id, shard, version)
    SELECT DISTINCT producer_id, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM orders WHERE customer_id = NEW.customer_id
      AND NOT (OLD.first_name <=> NEW.first_name AND OLD.email <=> NEW.email)
    ON DUPLICATE KEY UPDATE version = version + 1;
