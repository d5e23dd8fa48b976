-- 0041: a change of stock raises its own column of the catalogue's version rows, so what depends on everything
-- but stock (the producers' offers that carts keep, catalogue.kept_offers) outlives a sale. The catalogue's
-- version is the sum of both columns: each change raises one of them, so it still rises with every change.
ALTER TABLE catalogue_version ADD COLUMN stock_version BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER version;

DROP TRIGGER stock_changes_catalogue_update;

CREATE TRIGGER stock_changes_catalogue_update AFTER UPDATE ON stock FOR EACH ROW
    UPDATE catalogue_version SET stock_version = stock_version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16
      AND NOT (OLD.quantity_available <=> NEW.quantity_available AND OLD.reorder_threshold <=> NEW.reorder_threshold);
