-- 0032: how many requests each API token made in the current minute, for its rate limit: one row per token,
-- its window reset as a new minute starts.
CREATE TABLE api_rate (
    token_id INT UNSIGNED NOT NULL PRIMARY KEY,
    window_start DATETIME NOT NULL,
    requests INT UNSIGNED NOT NULL DEFAULT 0,
    CONSTRAINT fk_api_rate_token FOREIGN KEY (token_id) REFERENCES api_token (token_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
