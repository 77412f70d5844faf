-- 003 up: per-user, per-topic learning progress (mastery score, streak) with updated_at trigger.

CREATE TABLE public.progress (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint       NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    topic          text         NOT NULL,
    mastery_score  numeric(5,2) NOT NULL DEFAULT 0,
    last_practiced timestamptz,
    streak_days    integer      NOT NULL DEFAULT 0,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at     timestamptz  NOT NULL DEFAULT now(),
    -- Also serves as the "progress by user" index and the index for the user_id foreign key.
    CONSTRAINT progress_user_id_topic_key UNIQUE (user_id, topic),
    CONSTRAINT progress_mastery_score_check CHECK (mastery_score BETWEEN 0 AND 100),
    CONSTRAINT progress_streak_days_check CHECK (streak_days >= 0)
);

CREATE TRIGGER progress_set_updated_at
    BEFORE UPDATE ON public.progress
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE public.progress IS 'Learning progress per user and topic: mastery score (0-100), last practice time, daily streak.';
