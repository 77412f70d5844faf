-- 002 down: drop the users table (its indexes and trigger go with it).

DROP TABLE IF EXISTS public.users;
