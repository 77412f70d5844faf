-- 005 down: drop the submissions table (its indexes go with it).

DROP TABLE IF EXISTS public.submissions;
