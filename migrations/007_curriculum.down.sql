-- 007 down: drop the curriculum table (its indexes and trigger go with it).

DROP TABLE IF EXISTS public.curriculum;
