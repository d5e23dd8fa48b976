-- 0015: photos live in the database, so every app server sees every photo and backups hold them (see schema.sql).
-- `flask migrate` then moves the files that products and producers name from UPLOAD_FOLDER into this table;
-- their URLs (/uploads/<name>) stay as they were.

-- One stored photo: a re-encoded JPEG, named by its URL's last part. Photos are never changed, only
-- added and deleted, so a URL always means the same bytes and can be cached for good.
CREATE TABLE photo (
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    content_type VARCHAR(50) NOT NULL,
    byte_size INT UNSIGNED NOT NULL,
    sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    data MEDIUMBLOB NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_photo_size CHECK (byte_size = LENGTH(data))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
