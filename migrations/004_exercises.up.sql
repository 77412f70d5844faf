-- 004 up: coding exercises with JSON test cases, topic index and updated_at trigger.

CREATE TABLE public.exercises (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text        NOT NULL,
    description text        NOT NULL,
    difficulty  text        NOT NULL,
    topic       text        NOT NULL,
    test_cases  jsonb       NOT NULL DEFAULT '[]'::jsonb,
    solution    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Natural key, used by the seed files for idempotent upserts.
    CONSTRAINT exercises_title_key UNIQUE (title),
    CONSTRAINT exercises_difficulty_check CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    CONSTRAINT exercises_test_cases_check CHECK (jsonb_typeof(test_cases) = 'array')
);

CREATE INDEX exercises_topic_idx ON public.exercises (topic);

CREATE TRIGGER exercises_set_updated_at
    BEFORE UPDATE ON public.exercises
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE public.exercises IS 'Coding exercises with difficulty, topic, JSON test cases and reference solution.';
COMMENT ON COLUMN public.exercises.test_cases IS 'JSON array of {"input": [positional args...], "expected": value}.';
