-- 0020: the co-op's fee, a percentage of each order's goods, taken from the producer's side. The co-op's rate
-- (COOP_FEE_PERCENT) applies unless a producer has their own; each order keeps the rate it was placed at.
ALTER TABLE producer ADD COLUMN fee_percent DECIMAL(5,2) NULL AFTER payment_info,
    ADD CONSTRAINT chk_producer_fee CHECK (fee_percent IS NULL OR (fee_percent >= 0 AND fee_percent <= 100));
ALTER TABLE orders ADD COLUMN coop_fee_percent DECIMAL(5,2) NOT NULL DEFAULT 0 AFTER payment_method,
    ADD CONSTRAINT chk_orders_coop_fee CHECK (coop_fee_percent >= 0 AND coop_fee_percent <= 100);
