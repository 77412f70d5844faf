-- 003 down: drop the progress table (its indexes and trigger go with it).

DROP TABLE IF EXISTS public.progress;
