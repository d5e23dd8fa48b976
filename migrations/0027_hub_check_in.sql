-- 0027: the co-op checks baskets in at its pick-ups, so an order's history may name the operator.
ALTER TABLE order_status_history DROP CONSTRAINT chk_history_role;
ALTER TABLE order_status_history
    ADD CONSTRAINT chk_history_role CHECK (changed_by_role IN ('customer', 'producer', 'operator'));
