-- 0004: account security. A session version per account, so logging out or changing the password
-- revokes every copy of the session cookie; and failed logins, counted in the database so that all
-- app processes and hosts share the throttle.

ALTER TABLE customer ADD COLUMN session_version INT UNSIGNED NOT NULL DEFAULT 1 AFTER date_joined;
ALTER TABLE producer ADD COLUMN session_version INT UNSIGNED NOT NULL DEFAULT 1 AFTER date_joined;

CREATE TABLE login_failure (
    failure_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    ip VARCHAR(45) NOT NULL,
    failed_at DATETIME(6) NOT NULL,
    KEY idx_login_failure_email (email, failed_at),
    KEY idx_login_failure_ip (ip, failed_at),
    KEY idx_login_failure_time (failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
