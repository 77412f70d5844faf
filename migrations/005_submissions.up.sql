-- 005 up: code submissions by users for exercises; score stays NULL until graded.

CREATE TABLE public.submissions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint       NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    exercise_id  bigint       NOT NULL REFERENCES public.exercises (id) ON DELETE CASCADE,
    code         text         NOT NULL,
    score        numeric(5,2),
    feedback     text,
    submitted_at timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT submissions_score_check CHECK (score BETWEEN 0 AND 100)
);

-- "Recent submissions of a user"; also covers the user_id foreign key.
CREATE INDEX submissions_user_id_submitted_at_idx ON public.submissions (user_id, submitted_at DESC);
-- Foreign key index for exercise_id (cascading deletes, per-exercise lookups).
CREATE INDEX submissions_exercise_id_idx ON public.submissions (exercise_id);

COMMENT ON TABLE public.submissions IS 'Code submitted by a user for an exercise, with score (0-100, NULL until graded) and feedback.';
