-- 0036: search reads its own index of the stems (search_term) instead of InnoDB's FULLTEXT, which read every
-- matching row to rank and count it (about 10 ms for a word in 1 product in 16 of 50,000). The stems are kept
-- by triggers, from whatever writes the search columns; the FULLTEXT indexes go.
CREATE TABLE search_term (
    term VARCHAR(84) NOT NULL,
    product_id INT UNSIGNED NOT NULL,
    in_name TINYINT(1) NOT NULL,
    is_listed TINYINT(1) NOT NULL,
    out_of_stock TINYINT(1) NOT NULL,
    PRIMARY KEY (term, product_id),
    KEY idx_search_term_product (product_id),
    CONSTRAINT fk_search_term_product FOREIGN KEY (product_id) REFERENCES product (product_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER product_terms_insert AFTER INSERT ON product FOR EACH ROW
    INSERT IGNORE INTO search_term (term, product_id, in_name, is_listed, out_of_stock)
    SELECT LEFT(w.term, 84), NEW.product_id, FIND_IN_SET(w.term, REPLACE(NEW.search_name, ' ', ',')) > 0,
           NEW.is_listed, NEW.out_of_stock
    FROM JSON_TABLE(CONCAT('["', REPLACE(CONCAT_WS(' ', NEW.search_name, NEW.search_text, NEW.search_producer),
                                         ' ', '","'), '"]'), '$[*]' COLUMNS (term VARCHAR(400) PATH '$')) w
    WHERE CHAR_LENGTH(w.term) >= 3;

CREATE TRIGGER product_terms_update AFTER UPDATE ON product FOR EACH ROW
    DELETE FROM search_term
    WHERE product_id = NEW.product_id AND NOT (OLD.search_name <=> NEW.search_name
                                               AND OLD.search_text <=> NEW.search_text
                                               AND OLD.search_producer <=> NEW.search_producer);

CREATE TRIGGER product_terms_reindex AFTER UPDATE ON product FOR EACH ROW FOLLOWS product_terms_update
    INSERT IGNORE INTO search_term (term, product_id, in_name, is_listed, out_of_stock)
    SELECT LEFT(w.term, 84), NEW.product_id, FIND_IN_SET(w.term, REPLACE(NEW.search_name, ' ', ',')) > 0,
           NEW.is_listed, NEW.out_of_stock
    FROM JSON_TABLE(CONCAT('["', REPLACE(CONCAT_WS(' ', NEW.search_name, NEW.search_text, NEW.search_producer),
                                         ' ', '","'), '"]'), '$[*]' COLUMNS (term VARCHAR(400) PATH '$')) w
    WHERE CHAR_LENGTH(w.term) >= 3 AND NOT (OLD.search_name <=> NEW.search_name
                                           AND OLD.search_text <=> NEW.search_text
                                           AND OLD.search_producer <=> NEW.search_producer);

CREATE TRIGGER product_terms_listing AFTER UPDATE ON product FOR EACH ROW FOLLOWS product_terms_reindex
    UPDATE search_term SET is_listed = NEW.is_listed, out_of_stock = NEW.out_of_stock
    WHERE product_id = NEW.product_id AND (OLD.is_listed <> NEW.is_listed OR OLD.out_of_stock <> NEW.out_of_stock);

INSERT IGNORE INTO search_term (term, product_id, in_name, is_listed, out_of_stock)
    SELECT LEFT(w.term, 84), p.product_id, FIND_IN_SET(w.term, REPLACE(p.search_name, ' ', ',')) > 0,
           p.is_listed, p.out_of_stock
    FROM product p,
         JSON_TABLE(CONCAT('["', REPLACE(CONCAT_WS(' ', p.search_name, p.search_text, p.search_producer),
                                         ' ', '","'), '"]'), '$[*]' COLUMNS (term VARCHAR(400) PATH '$')) w
    WHERE CHAR_LENGTH(w.term) >= 3;

ALTER TABLE product DROP KEY ft_product_search, DROP KEY ft_product_search_name;
