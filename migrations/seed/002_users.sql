-- Seed: demo accounts (3 students, 1 teacher, 1 admin). Upsert on username;
-- existing rows are only overwritten when pgk8s_update_existing is true.

INSERT INTO public.users (username, email, role, display_name)
VALUES
    ('alice',     'alice@example.com',     'student', 'Alice Johnson'),
    ('bob',       'bob@example.com',       'student', 'Bob Martinez'),
    ('chen',      'chen@example.com',      'student', 'Chen Wei'),
    ('ms_rivera', 'ms.rivera@example.com', 'teacher', 'Elena Rivera'),
    ('admin',     'admin@example.com',     'admin',   'Platform Admin')
ON CONFLICT (username) DO UPDATE
SET email        = EXCLUDED.email,
    role         = EXCLUDED.role,
    display_name = EXCLUDED.display_name
WHERE :'pgk8s_update_existing'::boolean
  AND (users.email, users.role, users.display_name)
      IS DISTINCT FROM
      (EXCLUDED.email, EXCLUDED.role, EXCLUDED.display_name);
