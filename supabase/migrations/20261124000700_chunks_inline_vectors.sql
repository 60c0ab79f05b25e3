-- Keep each chunk's vector in its row. A chunk row (vector 1.5 kB, text, tsvector) is
-- about 3 kB, over PostgreSQL's 2 kB toasting threshold, so every vector had been moved
-- to the TOAST table: an exact search then fetched each one through the TOAST index,
-- about 2 µs a vector (9 ms for 4,000 chunks; 2 ms inline). Rows up to 8 kB now stay
-- whole, two or three to a page. This applies to rows written from now on; `docent
-- reindex` rewrites the vectors of older chunks (and the local model's new name makes
-- it re-embed them all).
alter table public.chunks set (toast_tuple_target = 8160);
