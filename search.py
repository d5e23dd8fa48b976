"""Word forms for catalogue search: every text is stored and searched as the stems of its words.

A product keeps three stemmed columns beside its text: search_name (its name), search_text (its
description and category) and search_producer (its producer's name). Whatever writes those texts writes
the stems in the same statement; `index_products` fills in any row written without them (the demo data,
a migration, a hand-made INSERT). Triggers copy each stem into search_term, which searches read.
"""
import functools
import re

import snowballstemmer

from db import database_tables, execute, query

_stemmer = snowballstemmer.stemmer("english")
# Plurals that change their last consonant, which the stemmer leaves apart (loaf → loaf, loaves → loav).
IRREGULAR = {"loaves": "loaf", "leaves": "leaf", "halves": "half", "calves": "calf", "knives": "knife",
             "shelves": "shelf", "wolves": "wolf", "lives": "life", "wives": "wife", "thieves": "thief",
             "geese": "goose", "mice": "mouse", "teeth": "tooth", "feet": "foot", "oxen": "ox"}
# Words too common to narrow a search (InnoDB's full-text stopwords, which searches have always skipped), and the
# shortest term searched for: search_term keeps stems of at least this length.
STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was what when "
    "where who will with und www".split())
MIN_TERM_LENGTH = 3
MAX_TERMS = 8


def words(text):
    """The words of a text, lower-cased: letters and digits, nothing a FULLTEXT query could read as an operator."""
    return re.findall(r"[^\W_]+", (text or "").lower())


@functools.lru_cache(maxsize=50_000)
def stem(word):
    return _stemmer.stemWord(IRREGULAR.get(word, word))


def stems(*texts):
    """The stored form of texts: the stem of every word, space-separated."""
    return " ".join(stem(word) for text in texts for word in words(text))


def terms(text):
    """The stems of text's words that a search looks for, each as a prefix of the stems it matches, so a word half
    typed still finds its products; None if no word is usable (too short, or a word every text holds)."""
    usable = [s for s in dict.fromkeys(stem(w) for w in words(text))
              if len(s) >= MIN_TERM_LENGTH and s not in STOPWORDS][:MAX_TERMS]
    return usable or None


def product_columns(name, description, category, producer_name):
    """(search_name, search_text, search_producer) for a product."""
    return stems(name), stems(description, category), stems(producer_name)


def index_products(where="p.search_name IS NULL", args=()):
    """Write the stems of every product matching where (by default, those never indexed); return how many."""
    rows = query("SELECT p.product_id, p.name, p.description, p.category, pr.business_name FROM product p"
                 f" JOIN producer pr ON pr.producer_id = p.producer_id WHERE {where}", args)
    if rows:
        execute("UPDATE product SET search_name = %s, search_text = %s, search_producer = %s WHERE product_id = %s",
                [product_columns(r["name"], r["description"], r["category"], r["business_name"]) + (r["product_id"],)
                 for r in rows], many=True)
    return len(rows)


def index_unstemmed():
    """Stem the products that SQL files wrote without their search columns (after migrations and the demo data)."""
    if "product" in database_tables() and "search_name" in {
            row["Field"] for row in query("SHOW COLUMNS FROM product")}:
        index_products()


def miscounted_stems():
    """The stems whose kept counts (search_stem, which its triggers keep) differ from their rows in search_term."""
    return [row["stem"] for row in query(
        "SELECT stem FROM (SELECT term AS stem, is_listed AS listed, is_listed AND NOT out_of_stock AS in_stock"
        " FROM search_term UNION ALL SELECT stem, -listed, -in_stock FROM search_stem) c"
        " GROUP BY stem HAVING SUM(listed) <> 0 OR SUM(in_stock) <> 0")]
