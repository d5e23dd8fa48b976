-- 0034: each producer's order counts in shards, as the catalogue's version is kept: each connection counts in its
-- own row, so concurrent checkouts for one producer no longer queue on one row until they commit. A count is
-- the sum of its shards; the counts kept so far stay, in shard 0.
ALTER TABLE order_count
    ADD COLUMN shard TINYINT UNSIGNED NOT NULL DEFAULT 0 AFTER status,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (producer_id, status, shard);

DROP TRIGGER order_count_insert;
DROP TRIGGER order_count_update;
DROP TRIGGER order_count_delete;

CREATE TRIGGER order_count_insert AFTER INSERT ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, shard, n)
    VALUES (NEW.producer_id, NEW.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1)
    ON DUPLICATE KEY UPDATE n = n + 1;

CREATE TRIGGER order_count_update AFTER UPDATE ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, shard, n)
    SELECT OLD.producer_id, OLD.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, -1
    FROM DUAL WHERE NOT (OLD.status <=> NEW.status AND OLD.producer_id <=> NEW.producer_id)
    UNION ALL
    SELECT NEW.producer_id, NEW.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, 1
    FROM DUAL WHERE NOT (OLD.status <=> NEW.status AND OLD.producer_id <=> NEW.producer_id)
    ON DUPLICATE KEY UPDATE n = n + VALUES(n);

CREATE TRIGGER order_count_delete AFTER DELETE ON orders FOR EACH ROW
    INSERT INTO order_count (producer_id, status, shard, n)
    VALUES (OLD.producer_id, OLD.status, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16, -1)
    ON DUPLICATE KEY UPDATE n = n - 1;
