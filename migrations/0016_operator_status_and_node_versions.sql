-- 0016: operators can be disabled; the catalogue version's rows are keyed by database node as well as by
-- connection (see schema.sql), so checkouts on different nodes of a cluster never raise the same row.
ALTER TABLE operator ADD COLUMN status ENUM('active', 'disabled') NOT NULL DEFAULT 'active' AFTER password_hash;

ALTER TABLE catalogue_version DROP CONSTRAINT chk_catalogue_version_shard;
ALTER TABLE catalogue_version ADD CONSTRAINT chk_catalogue_version_shard CHECK (shard < 128);
INSERT INTO catalogue_version (shard)
    WITH RECURSIVE shards (n) AS (SELECT 16 UNION ALL SELECT n + 1 FROM shards WHERE n < 127) SELECT n FROM shards;

DROP TRIGGER product_changes_catalogue_insert;
CREATE TRIGGER product_changes_catalogue_insert AFTER INSERT ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER product_changes_catalogue_update;
CREATE TRIGGER product_changes_catalogue_update AFTER UPDATE ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER product_changes_catalogue_delete;
CREATE TRIGGER product_changes_catalogue_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER fulfilment_option_changes_catalogue_insert;
CREATE TRIGGER fulfilment_option_changes_catalogue_insert AFTER INSERT ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER fulfilment_option_changes_catalogue_update;
CREATE TRIGGER fulfilment_option_changes_catalogue_update AFTER UPDATE ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER fulfilment_option_changes_catalogue_delete;
CREATE TRIGGER fulfilment_option_changes_catalogue_delete AFTER DELETE ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER fulfilment_slot_changes_catalogue_insert;
CREATE TRIGGER fulfilment_slot_changes_catalogue_insert AFTER INSERT ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER fulfilment_slot_changes_catalogue_update;
CREATE TRIGGER fulfilment_slot_changes_catalogue_update AFTER UPDATE ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER fulfilment_slot_changes_catalogue_delete;
CREATE TRIGGER fulfilment_slot_changes_catalogue_delete AFTER DELETE ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER producer_closure_changes_catalogue_insert;
CREATE TRIGGER producer_closure_changes_catalogue_insert AFTER INSERT ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER producer_closure_changes_catalogue_update;
CREATE TRIGGER producer_closure_changes_catalogue_update AFTER UPDATE ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER producer_closure_changes_catalogue_delete;
CREATE TRIGGER producer_closure_changes_catalogue_delete AFTER DELETE ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER slot_booking_changes_catalogue_insert;
CREATE TRIGGER slot_booking_changes_catalogue_insert AFTER INSERT ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER slot_booking_changes_catalogue_update;
CREATE TRIGGER slot_booking_changes_catalogue_update AFTER UPDATE ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER slot_booking_changes_catalogue_delete;
CREATE TRIGGER slot_booking_changes_catalogue_delete AFTER DELETE ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER stock_changes_catalogue_update;
CREATE TRIGGER stock_changes_catalogue_update AFTER UPDATE ON stock FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16
      AND NOT (OLD.quantity_available <=> NEW.quantity_available AND OLD.reorder_threshold <=> NEW.reorder_threshold);

DROP TRIGGER producer_changes_catalogue_insert;
CREATE TRIGGER producer_changes_catalogue_insert AFTER INSERT ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

DROP TRIGGER producer_changes_catalogue_update;
CREATE TRIGGER producer_changes_catalogue_update AFTER UPDATE ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16 AND NOT (
            OLD.business_name <=> NEW.business_name
        AND OLD.description <=> NEW.description
        AND OLD.town <=> NEW.town
        AND OLD.phone <=> NEW.phone
        AND OLD.public_email <=> NEW.public_email
        AND OLD.website <=> NEW.website
        AND OLD.payment_info <=> NEW.payment_info
        AND OLD.image_url <=> NEW.image_url
        AND OLD.thumbnail_url <=> NEW.thumbnail_url
        AND OLD.status <=> NEW.status
        AND OLD.date_joined <=> NEW.date_joined);

DROP TRIGGER producer_changes_catalogue_delete;
CREATE TRIGGER producer_changes_catalogue_delete AFTER DELETE ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;
