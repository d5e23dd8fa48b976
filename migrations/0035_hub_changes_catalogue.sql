-- 0035: a hub's closed days, its bookings (a hub time fills up), its capacity and fee, and the products it
-- does not take change what the catalogue's pages offer, as a producer's own do: they raise the catalogue's
-- version too, so no cached page offers a hub time after it closes or fills.
CREATE TRIGGER hub_changes_catalogue_update AFTER UPDATE ON hub FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_closure_changes_catalogue_insert AFTER INSERT ON hub_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_closure_changes_catalogue_update AFTER UPDATE ON hub_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_closure_changes_catalogue_delete AFTER DELETE ON hub_closure FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_booking_changes_catalogue_insert AFTER INSERT ON hub_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_booking_changes_catalogue_update AFTER UPDATE ON hub_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_booking_changes_catalogue_delete AFTER DELETE ON hub_booking FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_product_exclusion_changes_catalogue_insert AFTER INSERT ON hub_product_exclusion FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_product_exclusion_changes_catalogue_update AFTER UPDATE ON hub_product_exclusion FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;

CREATE TRIGGER hub_product_exclusion_changes_catalogue_delete AFTER DELETE ON hub_product_exclusion FOR EACH ROW
    UPDATE catalogue_version SET version = version + 1
    WHERE shard = ((@@auto_increment_offset - 1) % 8) * 16 + CONNECTION_ID() % 16;
