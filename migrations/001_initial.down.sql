-- 001 down: drop the shared set_updated_at() trigger function (all tables using it are dropped by later downs first).

DROP FUNCTION IF EXISTS public.set_updated_at();
