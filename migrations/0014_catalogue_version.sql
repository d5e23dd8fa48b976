-- 0014: the catalogue version behind the page cache for anonymous visitors (see schema.sql).

-- The catalogue's version: the sum of these rows, raised in the same transaction by every change that can
-- alter a page of the catalogue, so a cached page keyed by it is never served after such a change commits.
-- Each connection raises its own row of 16, so concurrent changes (checkouts) do not queue on one row.
CREATE TABLE catalogue_version (
    shard TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    version BIGINT UNSIGNED NOT NULL DEFAULT 0,
    CONSTRAINT chk_catalogue_version_shard CHECK (shard < 16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO catalogue_version (shard) VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13),
    (14), (15);

CREATE TRIGGER product_changes_catalogue_insert AFTER INSERT ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER product_changes_catalogue_update AFTER UPDATE ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER product_changes_catalogue_delete AFTER DELETE ON product FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_option_changes_catalogue_insert AFTER INSERT ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_option_changes_catalogue_update AFTER UPDATE ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_option_changes_catalogue_delete AFTER DELETE ON fulfilment_option FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_slot_changes_catalogue_insert AFTER INSERT ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_slot_changes_catalogue_update AFTER UPDATE ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER fulfilment_slot_changes_catalogue_delete AFTER DELETE ON fulfilment_slot FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER producer_closure_changes_catalogue_insert AFTER INSERT ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER producer_closure_changes_catalogue_update AFTER UPDATE ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER producer_closure_changes_catalogue_delete AFTER DELETE ON producer_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER slot_booking_changes_catalogue_insert AFTER INSERT ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER slot_booking_changes_catalogue_update AFTER UPDATE ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER slot_booking_changes_catalogue_delete AFTER DELETE ON slot_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

CREATE TRIGGER stock_changes_catalogue_update AFTER UPDATE ON stock FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = CONNECTION_ID() % 16
      AND NOT (OLD.quantity_available <=> NEW.quantity_available AND OLD.reorder_threshold <=> NEW.reorder_threshold);

CREATE TRIGGER producer_changes_catalogue_insert AFTER INSERT ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;

-- Passwords, emails and sessions are not on any page.
CREATE TRIGGER producer_changes_catalogue_update AFTER UPDATE ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = CONNECTION_ID() % 16 AND NOT (
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

CREATE TRIGGER producer_changes_catalogue_delete AFTER DELETE ON producer FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1 WHERE shard = CONNECTION_ID() % 16;
