-- 002 up: users table (students, teachers, admins) with case-insensitive unique email and updated_at trigger.

CREATE TABLE public.users (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username     text        NOT NULL,
    email        text        NOT NULL,
    role         text        NOT NULL DEFAULT 'student',
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_role_check CHECK (role IN ('student', 'teacher', 'admin'))
);

-- Case-insensitive uniqueness: 'Alice@Example.com' and 'alice@example.com' are the same address.
CREATE UNIQUE INDEX users_email_lower_key ON public.users (lower(email));

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE public.users IS 'Platform accounts: students, teachers and admins.';
