-- noeari demo data. It loads only into an empty database: run again, it changes nothing.
-- Every demo account's password is "password123", stored as a bcrypt hash (cost 12).

SET @seed = NOT EXISTS (SELECT 1 FROM producer) AND NOT EXISTS (SELECT 1 FROM customer)
    AND NOT EXISTS (SELECT 1 FROM product) AND NOT EXISTS (SELECT 1 FROM orders);

START TRANSACTION;

-- Four approved producers, and one who has just signed up and awaits the co-op's approval.
INSERT INTO producer (producer_id, business_name, email, password_hash, status)
SELECT * FROM (
    SELECT 1 AS producer_id, 'Hartley Farm' AS business_name, 'hartley@noeari.com' AS email,
           '$2b$12$EGpFuzLV1reeO/tjIMrQT.RKvIw00mOQAX6JbgV1jwKl0OQLU2aYe' AS password_hash, 'approved' AS status
    UNION ALL SELECT 2, 'Rosehill Dairy', 'rosehill@noeari.com', '$2b$12$74mFpvGT7mWCrIaOHcV6QOrlTbV7vvpHu2T.n0whey.fY6f4bmQRq', 'approved'
    UNION ALL SELECT 3, 'Millstone Bakery', 'millstone@noeari.com', '$2b$12$cDTnM7yggzrFRjLzOCUKu.Tbc/x7Blbnorl5NN8rVWrHlUcZ.z.zC', 'approved'
    UNION ALL SELECT 4, 'Bramble & Bee Café', 'bramble@noeari.com', '$2b$12$Wt1Ihb7/kuT/bs8StgQTb.nbDucZ8CKiNRiJU.L0M2DbFWB7xfqP2', 'approved'
    UNION ALL SELECT 5, 'Willow Mushrooms', 'willow@noeari.com', '$2b$12$8.dLKSBRyIxJLqcy.m2Es.t20CZ7DzI3Y.9e4iKE1O.E3iTxAwZby', 'pending'
) AS seed_rows WHERE @seed;

-- The co-op's operator.
INSERT INTO operator (operator_id, name, email, password_hash)
SELECT * FROM (
    SELECT 1 AS operator_id, 'Sam at the co-op' AS name, 'operator@noeari.com' AS email,
           '$2b$12$EaCPQG9Uesme9.apnrwtPulEkJhAYPLtsebU4LpTbSfzECl1Y/0eS' AS password_hash
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
    UNION ALL SELECT 20, 2, 'Rosehill Cheddar', 'Clothbound cheddar cheese, aged 12 months.', 'Dairy & Eggs', 4.80, '250 g', 1
    UNION ALL SELECT 21, 2, 'Natural yoghurt', 'Live, set in the pot.', 'Dairy & Eggs', 2.00, '500 g', 1
    UNION ALL SELECT 22, 3, 'Sourdough loaf', 'Long-fermented white sourdough bread.', 'Bakery', 4.20, 'loaf', 1
    UNION ALL SELECT 23, 3, 'Seeded rye', 'Dense rye bread with sunflower and pumpkin seeds.', 'Bakery', 4.50, 'loaf', 1
    UNION ALL SELECT 24, 3, 'Croissants', 'All-butter, baked at dawn.', 'Bakery', 1.60, 'each', 1
    UNION ALL SELECT 25, 3, 'Cinnamon buns', 'Cardamom dough, cinnamon butter.', 'Bakery', 2.40, 'each', 1
    UNION ALL SELECT 26, 3, 'Focaccia', 'Olive oil, rosemary and flaky salt.', 'Bakery', 3.80, 'slab', 1
    UNION ALL SELECT 27, 4, 'Wildflower honey', 'Raw, unfiltered honey from our hives. 🐝', 'Pantry', 7.50, '340 g jar', 1
    UNION ALL SELECT 28, 4, 'Strawberry jam', 'Small-batch, 60% fruit.', 'Pantry', 3.90, '340 g jar', 1
    UNION ALL SELECT 29, 4, 'Seville marmalade', 'Thick-cut and bittersweet.', 'Pantry', 3.90, '340 g jar', 1
    UNION ALL SELECT 30, 4, 'Pressed apple juice', 'Single-variety Cox, unfiltered.', 'Drinks', 3.20, '750 ml bottle', 1
    UNION ALL SELECT 31, 4, 'Elderflower cordial', 'Made with blossom from the hedgerows.', 'Drinks', 4.50, '500 ml bottle', 1
    UNION ALL SELECT 32, 5, 'Oyster mushrooms', 'Grown on straw in a cellar in Totterdown.', 'Vegetables', 3.80, '250 g', 1
) AS seed_rows WHERE @seed;

-- Food sold by weight: cheddar cut to order and apples by the kilo (by measure, in steps), mushrooms per 100 g,
-- and chickens ordered by the bird and paid for by what each weighs.
UPDATE product SET price = 24.00, unit = 'kg', sold_by = 'measure', measure = 'kg', step = 0.25, min_quantity = 0.25,
    max_quantity = 5, description = 'Clothbound cheddar cheese, aged 12 months, cut to order from the truckle.'
WHERE product_id = 20 AND @seed;
UPDATE product SET sold_by = 'measure', measure = 'kg', step = 0.5, min_quantity = 0.5 WHERE product_id = 7 AND @seed;
UPDATE product SET price = 1.20, unit = 'g', sold_by = 'measure', measure = '100g', step = 100, min_quantity = 200,
    max_quantity = 2000 WHERE product_id = 32 AND @seed;
UPDATE product SET price = 9.00, unit = 'whole chicken', sold_by = 'weighed', estimated_weight = 1.8,
    description = 'Slow-grown and dry-plucked. Priced by the kilo: you pay for what your bird weighs.'
WHERE product_id = 13 AND @seed;

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
    UNION ALL SELECT 13, 8, 2
    UNION ALL SELECT 14, 0, 0
    UNION ALL SELECT 15, 80, 20
    UNION ALL SELECT 16, 12, 10
    UNION ALL SELECT 17, 30, 8
    UNION ALL SELECT 18, 2, 10
    UNION ALL SELECT 19, 0, 4
    UNION ALL SELECT 20, 12.5, 3
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
    UNION ALL SELECT 32, 5000, 1000
) AS seed_rows WHERE @seed
ON DUPLICATE KEY UPDATE quantity_available = VALUES(quantity_available), reorder_threshold = VALUES(reorder_threshold);

-- Each producer's profile, and where, when and how their customers get their food.
UPDATE producer p JOIN (
    SELECT 1 AS producer_id, 'Chew Magna' AS town, '01275 555 014' AS phone, 'hello@hartleyfarm.example' AS public_email,
           'https://hartleyfarm.example' AS website,
           'Mixed farm in the Chew Valley: potatoes and roots, an old orchard, and pigs and cattle out on grass all year.' AS description,
           'Cash or card at the farm gate; bank transfer for deliveries (details on your order).' AS payment_info
    UNION ALL SELECT 2, 'Bath', '01225 555 027', 'dairy@rosehill.example', 'https://rosehill.example',
           'A small Jersey herd, milked twice a day. Cheese, butter and cream made on the farm.',
           'Cash or card in the dairy shop; the milk round takes cash or bank transfer.'
    UNION ALL SELECT 3, 'Bristol', '0117 555 0033', 'bake@millstone.example', '',
           'Sourdough and pastry baked overnight in Redland, from flour milled in Somerset.',
           'Card or cash at the counter.'
    UNION ALL SELECT 4, 'Bristol', '', 'hive@bramble.example', 'https://bramble.example',
           'Honey from our hives on the city allotments, jams and cordials from the hedgerows.',
           'Cash at the stall, or pay by card when you collect at the café.'
) AS profile ON profile.producer_id = p.producer_id
SET p.town = profile.town, p.phone = profile.phone, p.public_email = profile.public_email, p.website = profile.website,
    p.description = profile.description, p.payment_info = profile.payment_info
WHERE @seed;

INSERT INTO fulfilment_option (option_id, producer_id, kind, name, address, instructions, postcodes, fee, minimum_order,
                               free_over, cutoff_hours, capacity)
SELECT * FROM (
    SELECT 1 AS option_id, 1 AS producer_id, 'collection' AS kind, 'Farm gate' AS name,
           'Hartley Farm, Chew Lane, Chew Magna BS40 8QA' AS address,
           'Park in the yard; the shop is the green barn by the gate.' AS instructions, NULL AS postcodes,
           0.00 AS fee, 0.00 AS minimum_order, NULL AS free_over, 24 AS cutoff_hours, NULL AS capacity
    UNION ALL SELECT 2, 1, 'delivery', 'Bristol van', NULL, 'We leave boxes in a safe place if you are out.',
           'BS1, BS2, BS3, BS4, BS5, BS6, BS7, BS8', 3.50, 15.00, 40.00, 24, 20
    UNION ALL SELECT 3, 2, 'collection', 'Dairy shop', 'Rosehill Dairy, Lansdown Road, Bath BA1 9BT',
           'Ring the bell at the shop door.', NULL, 0.00, 0.00, NULL, 12, NULL
    UNION ALL SELECT 4, 2, 'delivery', 'Milk round', NULL, 'Bottles on the doorstep before breakfast.',
           'BA1, BA2', 2.00, 8.00, 25.00, 36, 30
    UNION ALL SELECT 5, 3, 'collection', 'Bakery counter', 'Millstone Bakery, 14 Chandos Road, Bristol BS6 6PE',
           'Ask at the counter for your name.', NULL, 0.00, 0.00, NULL, 16, 40
    UNION ALL SELECT 6, 4, 'collection', 'Saturday market stall', 'Corn Street Market, Bristol BS1 1JQ',
           'Look for the yellow awning.', NULL, 0.00, 0.00, NULL, 48, NULL
    UNION ALL SELECT 7, 4, 'collection', 'Café counter', 'Bramble & Bee Café, 3 Cotham Hill, Bristol BS6 6LA',
           'We will email you when your order is ready.', NULL, 0.00, 0.00, NULL, 24, NULL
) AS seed_rows WHERE @seed;

INSERT INTO fulfilment_slot (slot_id, option_id, weekday, start_time, end_time)
SELECT * FROM (
    SELECT 1 AS slot_id, 1 AS option_id, 5 AS weekday, '09:00' AS start_time, '12:00' AS end_time
    UNION ALL SELECT 2, 2, 3, '16:00', '19:00'
    UNION ALL SELECT 3, 3, 2, '15:00', '18:00'
    UNION ALL SELECT 4, 3, 5, '09:00', '13:00'
    UNION ALL SELECT 5, 4, 4, '07:00', '10:00'
    UNION ALL SELECT 6, 5, 1, '08:00', '11:00'
    UNION ALL SELECT 7, 5, 2, '08:00', '11:00'
    UNION ALL SELECT 8, 5, 3, '08:00', '11:00'
    UNION ALL SELECT 9, 5, 4, '08:00', '11:00'
    UNION ALL SELECT 10, 5, 5, '08:00', '11:00'
    UNION ALL SELECT 11, 6, 5, '08:30', '14:00'
) AS seed_rows WHERE @seed;

-- The co-op's shared pick-up, Saturdays 10:00–13:00: Hartley Farm and Millstone Bakery deliver to it.
INSERT INTO hub (hub_id, name, address, instructions, contact, cutoff_hours, capacity, fee)
SELECT 1, 'Old Market Hall', 'Old Market Hall, 12 West Street, Bristol BS2 0BH',
       'Baskets wait on the long tables, by name.', 'Sam at the co-op, 0117 496 0000', 24, 40, 1.00
FROM DUAL WHERE @seed;
INSERT INTO hub_slot (hub_slot_id, hub_id, weekday, start_time, end_time)
SELECT 1, 1, 5, '10:00', '13:00' FROM DUAL WHERE @seed;
INSERT INTO fulfilment_option (option_id, producer_id, hub_id, kind, name, address, instructions, drop_off, cutoff_hours)
SELECT seed_rows.option_id, seed_rows.producer_id, h.hub_id, 'collection', h.name, h.address, h.instructions,
       'by 09:00 on the day', h.cutoff_hours
FROM (SELECT 8 AS option_id, 1 AS producer_id UNION ALL SELECT 9, 3) AS seed_rows JOIN hub h ON h.hub_id = 1
WHERE @seed;
INSERT INTO fulfilment_slot (slot_id, option_id, weekday, start_time, end_time, hub_slot_id)
SELECT 12, 8, 5, '10:00', '13:00', 1 FROM DUAL WHERE @seed
UNION ALL SELECT 13, 9, 5, '10:00', '13:00', 1 FROM DUAL WHERE @seed;

-- The next date (1 to 7 days ahead) of each weekday, for orders placed for the coming week.
SET @next_tue = CURDATE() + INTERVAL ((1 - WEEKDAY(CURDATE()) + 6) % 7) + 1 DAY;
SET @next_thu = CURDATE() + INTERVAL ((3 - WEEKDAY(CURDATE()) + 6) % 7) + 1 DAY;
SET @next_fri = CURDATE() + INTERVAL ((4 - WEEKDAY(CURDATE()) + 6) % 7) + 1 DAY;
SET @next_sat = CURDATE() + INTERVAL ((5 - WEEKDAY(CURDATE()) + 6) % 7) + 1 DAY;

-- Jane collects her orders from Hartley Farm and Millstone Bakery (10 and 11) in one basket at the Old Market
-- Hall next Saturday: one place of the hall's capacity, its £1.00 fee once, carried by order 10.
INSERT INTO hub_basket (basket_id, customer_id, hub_id, hub_slot_id, basket_date, slot_start, slot_end, fee)
SELECT 1, 1, 1, 1, @next_sat, '10:00', '13:00', 1.00 FROM DUAL WHERE @seed;
INSERT INTO hub_booking (hub_slot_id, booking_date, booked) SELECT 1, @next_sat, 1 FROM DUAL WHERE @seed;

-- Order 5 is from before collection and delivery options existed: it keeps its old type and no slot.
INSERT INTO orders (order_id, customer_id, producer_id, status, order_type, delivery_address, postcode, phone, placed_at,
                    option_id, slot_id, fulfilment_name, fulfilment_address, fulfilment_instructions, fulfilment_date,
                    slot_start, slot_end, cutoff_hours, fee)
SELECT s.order_id, s.customer_id, s.producer_id, s.status, s.order_type, s.delivery_address, s.postcode, s.phone,
       s.placed_at, s.option_id, s.slot_id, o.name, o.address, o.instructions, s.fulfilment_date, sl.start_time,
       sl.end_time, IF(s.slot_id IS NULL, NULL, o.cutoff_hours), s.fee
FROM (
    SELECT 1 AS order_id, 1 AS customer_id, 1 AS producer_id, 'pending' AS status, 'collection' AS order_type,
           NULL AS delivery_address, NULL AS postcode, NULL AS phone, NOW() - INTERVAL 2 HOUR AS placed_at,
           1 AS option_id, 1 AS slot_id, @next_sat AS fulfilment_date, 0.00 AS fee
    UNION ALL SELECT 2, 2, 2, 'confirmed', 'delivery', '4 Mill Lane, Bath', 'BA2 3QD', '07700 900123',
           NOW() - INTERVAL 1 DAY, 4, 5, @next_fri, 2.00
    UNION ALL SELECT 3, 1, 3, 'ready', 'collection', NULL, NULL, NULL, NOW() - INTERVAL 2 DAY, 5, 6, @next_tue, 0.00
    UNION ALL SELECT 4, 2, 1, 'out_for_delivery', 'delivery', '4 Mill Lane, Bristol', 'BS6 5AB', '07700 900123',
           NOW() - INTERVAL 2 DAY, 2, 2, @next_thu, 3.50
    UNION ALL SELECT 5, 1, 4, 'completed', 'delivery', '12 Orchard Row, Ashby', NULL, NULL, NOW() - INTERVAL 6 DAY,
           NULL, NULL, NULL, 0.00
    UNION ALL SELECT 6, 2, 2, 'cancelled', 'collection', NULL, NULL, NULL, NOW() - INTERVAL 8 DAY, 3, 4, @next_sat, 0.00
    UNION ALL SELECT 7, 1, 1, 'pending', 'delivery', '12 Orchard Row, Bristol', 'BS6 5AB', '07700 900456',
           NOW() - INTERVAL 30 MINUTE, 2, 2, @next_thu, 3.50
    UNION ALL SELECT 8, 2, 1, 'confirmed', 'collection', NULL, NULL, '07700 900123', NOW() - INTERVAL 5 HOUR, 1, 1,
           @next_sat, 0.00
    UNION ALL SELECT 9, 2, 4, 'pending', 'collection', NULL, NULL, NULL, NOW() - INTERVAL 3 HOUR, 7, NULL, NULL, 0.00
    UNION ALL SELECT 10, 1, 1, 'pending', 'collection', NULL, NULL, NULL, NOW() - INTERVAL 4 HOUR, 8, 12, @next_sat,
           1.00
    UNION ALL SELECT 11, 1, 3, 'confirmed', 'collection', NULL, NULL, NULL, NOW() - INTERVAL 4 HOUR, 9, 13,
           @next_sat, 0.00
) AS s
LEFT JOIN fulfilment_option o ON o.option_id = s.option_id
LEFT JOIN fulfilment_slot sl ON sl.slot_id = s.slot_id
WHERE @seed;

UPDATE orders SET basket_id = 1, hub_fee = fee WHERE order_id IN (10, 11) AND @seed;

-- Jane's newest order came from a checkout whose confirmation page is /checkout/demo-checkout-jane-7.
INSERT INTO checkout_key (customer_id, checkout_key) SELECT 1, 'demo-checkout-jane-7' FROM DUAL WHERE @seed;
UPDATE orders SET checkout_key = 'demo-checkout-jane-7' WHERE order_id = 7 AND @seed;

-- Each line keeps how its product was sold; a weighed line's total is its estimate until it is weighed.
INSERT INTO order_item (order_id, product_id, quantity, unit_price, sold_by, measure, estimated_weight,
                        tolerance_percent, line_total)
SELECT s.order_id, s.product_id, s.quantity, s.unit_price, p.sold_by, p.measure, p.estimated_weight,
       IF(p.sold_by = 'weighed', p.tolerance_percent, NULL),
       s.quantity * s.unit_price * IF(p.sold_by = 'weighed', p.estimated_weight, 1)
FROM (
    SELECT 1 AS order_id, 1 AS product_id, 2 AS quantity, 1.80 AS unit_price
    UNION ALL SELECT 1, 2, 1, 1.50
    UNION ALL SELECT 1, 11, 1, 5.20
    UNION ALL SELECT 2, 15, 4, 1.40
    UNION ALL SELECT 2, 18, 1, 3.20
    UNION ALL SELECT 3, 22, 1, 4.20
    UNION ALL SELECT 3, 24, 4, 1.60
    UNION ALL SELECT 4, 7, 2, 2.40
    UNION ALL SELECT 4, 13, 1, 9.00
    UNION ALL SELECT 5, 27, 2, 7.50
    UNION ALL SELECT 5, 30, 3, 3.20
    UNION ALL SELECT 6, 20, 0.75, 24.00
    UNION ALL SELECT 7, 5, 2, 1.60
    UNION ALL SELECT 7, 12, 2, 6.50
    UNION ALL SELECT 8, 1, 3, 1.80
    UNION ALL SELECT 8, 8, 2, 2.80
    UNION ALL SELECT 8, 13, 2, 9.00
    UNION ALL SELECT 9, 27, 1, 7.50
    UNION ALL SELECT 9, 31, 1, 4.50
    UNION ALL SELECT 10, 2, 2, 1.50
    UNION ALL SELECT 11, 23, 1, 4.50
    UNION ALL SELECT 11, 25, 2, 2.40
) AS s JOIN product p ON p.product_id = s.product_id WHERE @seed;

-- Juice is standard-rated for VAT (most food is zero-rated); each line keeps the rate it was sold at.
UPDATE product SET vat_rate = 'standard' WHERE product_id = 30 AND @seed;
UPDATE order_item oi JOIN product p ON p.product_id = oi.product_id JOIN vat_rate v ON v.code = p.vat_rate
SET oi.vat_percent = v.percent WHERE @seed;

-- What the invoices of two producers say about them (the others use their business names).
UPDATE producer SET legal_name = 'Bramble and Bee Ltd', address = '3 Church Street\nAshby\nLE65 1AA',
    vat_number = 'GB123456789', invoice_prefix = 'BRAMBLE' WHERE producer_id = 4 AND @seed;
UPDATE producer SET legal_name = 'J. & M. Hartley', address = 'Hartley Farm\nLower Road\nBristol BS40 7AA',
    invoice_prefix = 'HARTLEY' WHERE producer_id = 1 AND @seed;

-- Every order taken for a slot counts against that slot's capacity on its date.
INSERT INTO slot_booking (slot_id, slot_date, booked)
SELECT slot_id, fulfilment_date, COUNT(*) FROM orders
WHERE slot_id IS NOT NULL AND status <> 'cancelled' AND @seed
GROUP BY slot_id, fulfilment_date;

-- Order 5 was paid when it was delivered.
UPDATE orders SET payment_status = 'paid', paid_at = placed_at + INTERVAL 1 DAY, paid_by_id = producer_id
WHERE order_id = 5 AND @seed;

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
    UNION ALL SELECT 8, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 8, 'pending', 'confirmed', 'producer', 45
    UNION ALL SELECT 9, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 10, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 11, NULL, 'pending', 'customer', 0
    UNION ALL SELECT 11, 'pending', 'confirmed', 'producer', 50
) AS h ON h.order_id = o.order_id
WHERE @seed;

-- Jane has a cart waiting.
INSERT INTO cart_item (customer_id, product_id, quantity, price_when_added)
SELECT * FROM (
    SELECT 1 AS customer_id, 22 AS product_id, 1 AS quantity, 4.20 AS price_when_added
    UNION ALL SELECT 1, 18, 1, 3.20
) AS seed_rows WHERE @seed;

-- Rosehill Dairy's shop takes payment from customers' credit with the co-op, and Jane has £40.00 of credit,
-- paid in by bank transfer. (The orders' own entries are posted by the app after loading: ledger.backfill_orders.)
UPDATE fulfilment_option SET payment_method = 'credit' WHERE option_id = 3 AND @seed;
INSERT INTO ledger_account (account_id, kind, owner_id, balance)
SELECT * FROM (
    SELECT 1 AS account_id, 'bank' AS kind, 0 AS owner_id, -40.00 AS balance
    UNION ALL SELECT 2, 'credit', 1, 40.00
) AS seed_rows WHERE @seed;
INSERT INTO ledger_entry (entry_id, kind, note, reference, actor_role, actor_id, created_at)
SELECT 1, 'topup', 'Top-up received, reference JANE-NOV-TOPUP', 'JANE-NOV-TOPUP', 'operator', 1, NOW() - INTERVAL 7 DAY
FROM DUAL WHERE @seed;
INSERT INTO ledger_leg (entry_id, account_id, amount)
SELECT * FROM (SELECT 1 AS entry_id, 1 AS account_id, -40.00 AS amount UNION ALL SELECT 1, 2, 40.00) AS seed_rows
WHERE @seed;

COMMIT;
