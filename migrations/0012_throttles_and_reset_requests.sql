-- Login failures tell clients apart: a browser that has logged in to the account before (its device
-- cookie) or else a network address, so one client's guesses never lock out another.
ALTER TABLE login_failure
    ADD COLUMN client VARCHAR(80) NOT NULL DEFAULT '' AFTER ip,
    ADD COLUMN trusted TINYINT(1) NOT NULL DEFAULT 0 AFTER client,
    ADD KEY idx_login_failure_client (email, client, failed_at);
UPDATE login_failure SET client = CONCAT('ip:', ip);

-- "Forgot password" records a request, the same work for known and unknown emails; the worker
-- answers it, emailing a link only when the email has an account.
CREATE TABLE password_reset_request (
    request_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role ENUM('customer', 'producer', 'operator') NOT NULL,
    email VARCHAR(254) NOT NULL,
    client VARCHAR(80) NOT NULL,
    requested_at DATETIME(6) NOT NULL,
    answered_at DATETIME(6) NULL,
    KEY idx_reset_request_email (email, requested_at),
    KEY idx_reset_request_client (client, requested_at),
    KEY idx_reset_request_waiting (answered_at, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Signups per client, for the signup throttle.
CREATE TABLE signup_attempt (
    attempt_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    client VARCHAR(80) NOT NULL,
    attempted_at DATETIME(6) NOT NULL,
    KEY idx_signup_attempt_client (client, attempted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
