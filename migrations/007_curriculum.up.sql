-- 007 up: curriculum of modules and topics with ordering, JSON dependencies and updated_at trigger.

CREATE TABLE public.curriculum (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    module_name       text        NOT NULL,
    topic_name        text        NOT NULL,
    order_index       integer     NOT NULL,
    dependencies      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    estimated_minutes integer     NOT NULL,
    description       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Natural key, used by the seed files for idempotent upserts.
    CONSTRAINT curriculum_module_name_topic_name_key UNIQUE (module_name, topic_name),
    CONSTRAINT curriculum_order_index_check CHECK (order_index >= 0),
    CONSTRAINT curriculum_dependencies_check CHECK (jsonb_typeof(dependencies) = 'array'),
    CONSTRAINT curriculum_estimated_minutes_check CHECK (estimated_minutes > 0)
);

CREATE INDEX curriculum_module_name_order_index_idx ON public.curriculum (module_name, order_index);

CREATE TRIGGER curriculum_set_updated_at
    BEFORE UPDATE ON public.curriculum
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE public.curriculum IS 'Learning path: topics grouped into modules, ordered, with prerequisite topic names and time estimates.';
COMMENT ON COLUMN public.curriculum.dependencies IS 'JSON array of prerequisite topic_name strings.';
