-- 006 down: drop the struggle_alerts table (its indexes go with it).

DROP TABLE IF EXISTS public.struggle_alerts;
