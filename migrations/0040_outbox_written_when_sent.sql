-- 0040: a checkout's emails are promised in its transaction by what they are about (template, about) and
-- written, recipient, subject and body, by the worker as it sends them (mail.promise_all, mail.write_promised).
ALTER TABLE email_outbox
    MODIFY recipient VARCHAR(254) NULL,
    MODIFY subject VARCHAR(255) NULL,
    MODIFY body_text MEDIUMTEXT NULL,
    ADD COLUMN template VARCHAR(40) NULL AFTER body_html,
    ADD COLUMN about VARCHAR(255) NULL AFTER template;
