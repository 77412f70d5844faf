-- 004 down: drop the exercises table (its indexes and trigger go with it).

DROP TABLE IF EXISTS public.exercises;
