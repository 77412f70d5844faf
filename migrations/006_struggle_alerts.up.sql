-- 006 up: struggle alerts raised when a user repeatedly hits the same error pattern on a topic.

CREATE TABLE public.struggle_alerts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint      NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    topic          text        NOT NULL,
    error_pattern  text        NOT NULL,
    first_detected timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    notified       boolean     NOT NULL DEFAULT false
);

-- Foreign key index (cascading deletes from users, all alerts of a user).
CREATE INDEX struggle_alerts_user_id_idx ON public.struggle_alerts (user_id);
-- Open (unresolved) alerts per user, oldest first.
CREATE INDEX struggle_alerts_open_idx ON public.struggle_alerts (user_id, first_detected)
    WHERE resolved_at IS NULL;

COMMENT ON TABLE public.struggle_alerts IS 'Detected struggle patterns per user and topic; open while resolved_at IS NULL.';
