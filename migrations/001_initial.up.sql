-- 001 up: shared helpers. No extensions needed (gen_random_uuid() and plpgsql are core in PostgreSQL 15).
-- set_updated_at(): BEFORE UPDATE row-trigger function that stamps NEW.updated_at with now().

CREATE FUNCTION public.set_updated_at()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION public.set_updated_at() IS 'BEFORE UPDATE trigger function: sets NEW.updated_at = now().';
