-- 0037: a search for one word whose prefix covers one stem reads its page in rank order straight from this
-- index (listed, in stock first, name matches first, then by product), and counts its matches from it.
ALTER TABLE search_term ADD KEY idx_search_term_rank (term, is_listed, out_of_stock, in_name DESC, product_id);
