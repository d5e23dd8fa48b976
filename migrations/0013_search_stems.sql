-- 0013: search by word forms. Each product keeps the stems of its name (search_name), of its
-- description and category (search_text) and of its producer's name (search_producer), written by
-- the app beside the text; FULLTEXT searches them, the name's index alone ranking name matches first.
-- The app fills in the stems of existing products (`flask migrate` does, after this file).

ALTER TABLE product
    ADD COLUMN search_name VARCHAR(400) NULL,
    ADD COLUMN search_text TEXT NULL,
    ADD COLUMN search_producer VARCHAR(300) NULL,
    DROP KEY ft_product_text;

ALTER TABLE product ADD FULLTEXT KEY ft_product_search (search_name, search_text, search_producer);

ALTER TABLE product ADD FULLTEXT KEY ft_product_search_name (search_name);

ALTER TABLE producer DROP KEY ft_producer_name;
