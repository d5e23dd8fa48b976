-- noeari demo data. It loads only into an empty database: run again, it changes nothing.
-- Every demo account's password is "password123", stored as a bcrypt hash (cost 12).

SET @seed = NOT EXISTS (SELECT 1 FROM producer) AND NOT EXISTS (SELECT 1 FROM customer)
    AND NOT EXISTS (SELECT 1 FROM product) AND NOT EXISTS (SELECT 1 FROM orders);

START TRANSACTION;

INSERT INTO producer (producer_id, business_name, email, password_hash)
SELECT * FROM (
    SELECT 1 AS producer_id, 'Hartley Farm' AS business_name, 'hartley@noeari.com' AS email,
           '$2b$12$EGpFuzLV1reeO/tjIMrQT.RKvIw00mOQAX6JbgV1jwKl0OQLU2aYe' AS password_hash
    UNION ALL SELECT 2, 'Rosehill Dairy', 'rosehill@noeari.com', '$2b$12$74mFpvGT7mWCrIaOHcV6QOrlTbV7vvpHu2T.n0whey.fY6f4bmQRq'
    UNION ALL SELECT 3, 'Millstone Bakery', 'millstone@noeari.com', '$2b$12$cDTnM7yggzrFRjLzOCUKu.Tbc/x7Blbnorl5NN8rVWrHlUcZ.z.zC'
    UNION ALL SELECT 4, 'Bramble & Bee Café', 'bramble@noeari.com', '$2b$12$Wt1Ihb7/kuT/bs8StgQTb.nbDucZ8CKiNRiJU.L0M2DbFWB7xfqP2'
) AS seed_rows WHERE @seed;

INSERT INTO customer (customer_id, first_name, email, password_hash)
SELECT * FROM (
    SELECT 1 AS customer_id, 'Jane' AS first_name, 'jane@example.com' AS email,
           '$2b$12$nDvdaFMHCNeI325STOUr.Ocb1NeEJO14yYA..icnEUx8qD8tIiugK' AS password_hash
    UNION ALL SELECT 2, 'Tom', 'tom@example.com', '$2b$12$pDk8qXDM/yj/xK.H4IHuwOCpVxJ4X6QPiYtEfo92PHQfp44GAn8MK'
) AS seed_rows WHERE @seed;

INSERT INTO product (product_id, producer_id, name, description, category, price, unit, is_available)
SELECT * FROM (
    SELECT 1 AS product_id, 1 AS producer_id, 'Maris Piper potatoes' AS name,
           'Floury all-rounders, dug this week. Great for roasting and mash.' AS description,
           'Vegetables' AS category, 1.80 AS price, 'kg' AS unit, 1 AS is_available
    UNION ALL SELECT 2, 1, 'Chantenay carrots', 'Short, sweet carrots with the tops on.', 'Vegetables', 1.50, 'bunch', 1
    UNION ALL SELECT 3, 1, 'Red onions', 'Mild red onions, cured for storage.', 'Vegetables', 1.20, 'kg', 1
    UNION ALL SELECT 4, 1, 'Curly kale', 'Hardy winter kale, picked the morning it ships.', 'Vegetables', 1.10, 'bag (250 g)', 1
    UNION ALL SELECT 5, 1, 'Butternut squash', 'Nutty, dense squash that keeps for weeks.', 'Vegetables', 1.60, 'each', 1
    UNION ALL SELECT 6, 1, 'Leeks', 'Long white leeks, washed and trimmed.', 'Vegetables', 2.00, 'bunch of 3', 1
    UNION ALL SELECT 7, 1, 'Bramley apples', 'Sharp cooking apples for crumbles and sauce.', 'Fruit', 2.40, 'kg', 1
    UNION ALL SELECT 8, 1, 'Cox apples', 'Aromatic eating apples from the old orchard.', 'Fruit', 2.80, 'kg', 1
    UNION ALL SELECT 9, 1, 'Conference pears', 'Ripen them on the windowsill for two days.', 'Fruit', 2.60, 'kg', 1
    UNION ALL SELECT 10, 1, 'Frozen raspberries', 'Summer raspberries, frozen the day they were picked.', 'Fruit', 3.50, '500 g', 1
    UNION ALL SELECT 11, 1, 'Pork sausages', 'Outdoor-reared pork, 97% meat, no fillers.', 'Meat & Fish', 5.20, 'pack of 6', 1
    UNION ALL SELECT 12, 1, 'Beef mince', 'Grass-fed beef, 15% fat.', 'Meat & Fish', 6.50, '500 g', 1
    UNION ALL SELECT 13, 1, 'Whole free-range chicken', 'Slow-grown and dry-plucked.', 'Meat & Fish', 14.00, 'each (about 1.8 kg)', 1
    UNION ALL SELECT 14, 1, 'Asparagus', 'Back in May.', 'Vegetables', 3.90, 'bunch', 0
    UNION ALL SELECT 15, 2, 'Whole milk', 'Unhomogenised, from our Jersey herd.', 'Dairy & Eggs', 1.40, 'litre', 1
    UNION ALL SELECT 16, 2, 'Double cream', 'Thick enough to stand a spoon in.', 'Dairy & Eggs', 2.20, '300 ml', 1
    UNION ALL SELECT 17, 2, 'Salted butter', 'Churned by hand with sea salt.', 'Dairy & Eggs', 3.10, '250 g', 1
    UNION ALL SELECT 18, 2, 'Free-range eggs', 'From hens that roam the orchard.', 'Dairy & Eggs', 3.20, 'dozen', 1
    UNION ALL SELECT 19, 2, 'Crème fraîche', 'Tangy cultured cream.', 'Dairy & Eggs', 2.50, '200 ml', 1
    UNION ALL SELECT 20, 2, 'Rosehill Cheddar', 'Clothbound, aged 12 months.', 'Dairy & Eggs', 4.80, '250 g', 1
    UNION ALL SELECT 21, 2, 'Natural yoghurt', 'Live, set in the pot.', 'Dairy & Eggs', 2.00, '500 g', 1
    UNION ALL SELECT 22, 3, 'Sourdough loaf', 'Long-fermented white sourdough.', 'Bakery', 4.20, 'loaf', 1
    UNION ALL SELECT 23, 3, 'Seeded rye', 'Dense rye with sunflower and pumpkin seeds.', 'Bakery', 4.50, 'loaf', 1
    UNION ALL SELECT 24, 3, 'Croissants', 'All-butter, baked at dawn.', 'Bakery', 1.60, 'each', 1
    UNION ALL SELECT 25, 3, 'Cinnamon buns', 'Cardamom dough, cinnamon butter.', 'Bakery', 2.40, 'each', 1
    UNION ALL SELECT 26, 3, 'Focaccia', 'Olive oil, rosemary and flaky salt.', 'Bakery', 3.80, 'slab', 1
    UNION ALL SELECT 27, 4, 'Wildflower honey', 'Raw, unfiltered honey from our hives. 🐝', 'Pantry', 7.50, '340 g jar', 1
    UNION ALL SELECT 28, 4, 'Strawberry jam', 'Small-batch, 60% fruit.', 'Pantry', 3.90, '340 g jar', 1
    UNION ALL SELECT 29, 4, 'Seville marmalade', 'Thick-cut and bittersweet.', 'Pantry', 3.90, '340 g jar', 1
    UNION ALL SELECT 30, 4, 'Pressed apple juice', 'Single-variety Cox, unfiltered.', 'Drinks', 3.20, '750 ml bottle', 1
    UNION ALL SELECT 31, 4, 'Elderflower cordial', 'Made with blossom from the hedgerows.', 'Drinks', 4.50, '500 ml bottle', 1
) AS seed_rows WHERE @seed;

-- Each product's stock row exists already (a trigger makes it); this sets its figures.
INSERT INTO stock (product_id, quantity_available, reorder_threshold)
SELECT * FROM (
    SELECT 1 AS product_id, 120 AS quantity_available, 20 AS reorder_threshold
    UNION ALL SELECT 2, 40, 10
    UNION ALL SELECT 3, 60, 10
    UNION ALL SELECT 4, 8, 10
    UNION ALL SELECT 5, 25, 5
    UNION ALL SELECT 6, 0, 5
    UNION ALL SELECT 7, 50, 10
    UNION ALL SELECT 8, 45, 10
    UNION ALL SELECT 9, 3, 8
    UNION ALL SELECT 10, 15, 5
    UNION ALL SELECT 11, 20, 6
    UNION ALL SELECT 12, 4, 6
    UNION ALL SELECT 13, 6, 2
    UNION ALL SELECT 14, 0, 0
    UNION ALL SELECT 15, 80, 20
    UNION ALL SELECT 16, 12, 10
    UNION ALL SELECT 17, 30, 8
    UNION ALL SELECT 18, 2, 10
    UNION ALL SELECT 19, 0, 4
    UNION ALL SELECT 20, 18, 5
    UNION ALL SELECT 21, 22, 6
    UNION ALL SELECT 22, 14, 4
    UNION ALL SELECT 23, 9, 4
    UNION ALL SELECT 24, 36, 12
    UNION ALL SELECT 25, 5, 6
    UNION ALL SELECT 26, 7, 3
    UNION ALL SELECT 27, 1, 3
    UNION ALL SELECT 28, 24, 6
    UNION ALL SELECT 29, 19, 6
    UNION ALL SELECT 30, 30, 6
    UNION ALL SELECT 31, 0, 4
) AS seed_rows WHERE @seed
ON DUPLICATE KEY UPDATE quantity_available = VALUES(quantity_available), reorder_threshold = VALUES(reorder_threshold);

INSERT INTO orders (order_id, customer_id, producer_id, status, order_type, delivery_address, placed_at)
SELECT * FROM (
    SELECT 1 AS order_id, 1 AS customer_id, 1 AS producer_id, 'pending' AS status,
           'collection' AS order_type, NULL AS delivery_address, NOW() - INTERVAL 2 HOUR AS placed_at
    UNION ALL SELECT 2, 2, 2, 'confirmed', 'delivery', '4 Mill Lane, Ashby', NOW() - INTERVAL 1 DAY
    UNION ALL SELECT 3, 1, 3, 'ready', 'collection', NULL, NOW() - INTERVAL 2 DAY
    UNION ALL SELECT 4, 2, 1, 'out_for_delivery', 'delivery', '4 Mill Lane, Ashby', NOW() - INTERVAL 2 DAY
    UNION ALL SELECT 5, 1, 4, 'completed', 'delivery', '12 Orchard Row, Ashby', NOW() - INTERVAL 6 DAY
    UNION ALL SELECT 6, 2, 2, 'cancelled', 'collection', NULL, NOW() - INTERVAL 8 DAY
    UNION ALL SELECT 7, 1, 1, 'pending', 'delivery', '12 Orchard Row, Ashby', NOW() - INTERVAL 30 MINUTE
) AS seed_rows WHERE @seed;

INSERT INTO order_item (order_id, product_id, quantity, unit_price)
SELECT * FROM (
    SELECT 1 AS order_id, 1 AS product_id, 2 AS quantity, 1.80 AS unit_price
    UNION ALL SELECT 1, 2, 1, 1.50
    UNION ALL SELECT 1, 11, 1, 5.20
    UNION ALL SELECT 2, 15, 4, 1.40
    UNION ALL SELECT 2, 18, 1, 3.20
    UNION ALL SELECT 3, 22, 1, 4.20
    UNION ALL SELECT 3, 24, 4, 1.60
    UNION ALL SELECT 4, 7, 2, 2.40
    UNION ALL SELECT 4, 13, 1, 14.00
    UNION ALL SELECT 5, 27, 2, 7.50
    UNION ALL SELECT 5, 30, 3, 3.20
    UNION ALL SELECT 6, 20, 1, 4.80
    UNION ALL SELECT 7, 5, 2, 1.60
    UNION ALL SELECT 7, 12, 2, 6.50
) AS seed_rows WHERE @seed;

-- Each order's history, from being placed to where it is now.
INSERT INTO order_status_history (order_id, from_status, to_status, changed_by_role, changed_by_id, changed_at)
SELECT o.order_id, h.from_status, h.to_status, h.changed_by_role,
       IF(h.changed_by_role = 'customer', o.customer_id, o.producer_id), o.placed_at + INTERVAL h.minutes MINUTE
FROM orders o JOIN (
    SELECT 1 AS order_id, NULL AS from_status, 'pending' AS to_status, 'customer' AS changed_by_role, 0 AS minutes
    UNION ALL SELECT 2, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 2, 'pending', 'confirmed', 'producer', 40
    UNION ALL SELECT 3, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 3, 'pending', 'confirmed', 'producer', 30
    UNION ALL SELECT 3, 'confirmed', 'ready', 'producer', 600
    UNION ALL SELECT 4, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 4, 'pending', 'confirmed', 'producer', 20
    UNION ALL SELECT 4, 'confirmed', 'out_for_delivery', 'producer', 1500
    UNION ALL SELECT 5, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 5, 'pending', 'confirmed', 'producer', 60
    UNION ALL SELECT 5, 'confirmed', 'out_for_delivery', 'producer', 1440
    UNION ALL SELECT 5, 'out_for_delivery', 'completed', 'producer', 1560
    UNION ALL SELECT 6, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 6, 'pending', 'cancelled', 'customer', 15
    UNION ALL SELECT 7, NULL, 'pending', 'customer', 0
) AS h ON h.order_id = o.order_id
WHERE @seed;

-- Jane has a cart waiting.
INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added)
SELECT * FROM (
    SELECT 1 AS customer_id, 22 AS product_id, 1 AS quantity, 4.20 AS price_when_added
    UNION ALL SELECT 1, 18, 1, 3.20
) AS seed_rows WHERE @seed;

COMMIT;
