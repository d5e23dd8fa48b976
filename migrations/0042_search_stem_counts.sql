-- 0042: each stem's listed products (and those of them in stock) are counted as search_term changes, so a
-- search for a word that begins one stem only reads its total from a few rows, not from an index entry per
-- match. A count is the sum of its shards: each connection counts in its own row (as order_count), so
-- concurrent changes of products sharing a common stem do not queue on one row until they commit.
CREATE TABLE search_stem (
    stem VARCHAR(84) NOT NULL,
    shard TINYINT UNSIGNED NOT NULL,
    listed INT NOT NULL DEFAULT 0,
    in_stock INT NOT NULL DEFAULT 0,
    PRIMARY KEY (stem, shard)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO search_stem (stem, shard, listed, in_stock)
    SELECT term, 0, SUM(is_listed), SUM(is_listed AND NOT out_of_stock) FROM search_term GROUP BY term;

CREATE TRIGGER search_stem_insert AFTER INSERT ON search_term FOR EACH ROW
    INSERT INTO search_stem (stem, shard, listed, in_stock)
    VALUES (NEW.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE listed = listed + VALUES(listed), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER search_stem_update AFTER UPDATE ON search_term FOR EACH ROW
    INSERT INTO search_stem (stem, shard, listed, in_stock)
    VALUES (OLD.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            -OLD.is_listed, -(OLD.is_listed AND NOT OLD.out_of_stock)),
           (NEW.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            NEW.is_listed, NEW.is_listed AND NOT NEW.out_of_stock)
    ON DUPLICATE KEY UPDATE listed = listed + VALUES(listed), in_stock = in_stock + VALUES(in_stock);

CREATE TRIGGER search_stem_delete AFTER DELETE ON search_term FOR EACH ROW
    INSERT INTO search_stem (stem, shard, listed, in_stock)
    VALUES (OLD.term, ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16,
            -OLD.is_listed, -(OLD.is_listed AND NOT OLD.out_of_stock))
    ON DUPLICATE KEY UPDATE listed = listed + VALUES(listed), in_stock = in_stock + VALUES(in_stock);

-- A product's stems go by ON DELETE CASCADE, which fires no trigger: deleted first, they are counted out.
CREATE TRIGGER product_terms_delete BEFORE DELETE ON product FOR EACH ROW
    DELETE FROM search_term WHERE product_id = OLD.product_id;
