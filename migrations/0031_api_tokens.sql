-- 0031: bearer tokens for the JSON API (/api/v1). Only a token's SHA-256 is kept; each is named, expires, and
-- is revoked by its owner, by a password change or by a suspension.
CREATE TABLE api_token (
    token_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role VARCHAR(12) NOT NULL,
    account_id INT UNSIGNED NOT NULL,
    name VARCHAR(100) NOT NULL DEFAULT '',
    token_hash CHAR(64) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at DATETIME NOT NULL,
    last_used_at DATETIME NULL,
    revoked_at DATETIME NULL,
    UNIQUE KEY uq_api_token_hash (token_hash),
    KEY idx_api_token_account (role, account_id, revoked_at),
    CONSTRAINT chk_api_token_role CHECK (role IN ('customer', 'producer', 'operator'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
