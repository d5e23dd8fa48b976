-- 0025: a card payment for weighed goods is authorized for the most the order can cost (estimates plus
-- tolerance) and captured once every weight is in; it reads 'authorized' until then.
ALTER TABLE card_payment ADD COLUMN capture_method VARCHAR(10) NOT NULL DEFAULT 'automatic' AFTER amount,
    ADD COLUMN captured_amount DECIMAL(12,2) NULL AFTER intent_id,
    ADD CONSTRAINT chk_card_payment_capture CHECK (capture_method IN ('automatic', 'manual'));
ALTER TABLE card_payment DROP CONSTRAINT chk_card_payment_status;
ALTER TABLE card_payment ADD CONSTRAINT chk_card_payment_status
    CHECK (status IN ('awaiting', 'authorized', 'paid', 'released'));
