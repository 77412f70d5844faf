-- Seed: sample learning progress for the demo students (user ids looked up by username).
-- Upsert on (user_id, topic); existing rows are only overwritten when pgk8s_update_existing is true.

INSERT INTO public.progress (user_id, topic, mastery_score, last_practiced, streak_days)
SELECT u.id, v.topic, v.mastery_score, v.last_practiced, v.streak_days
FROM (
    VALUES
        ('alice', 'Variables and Types',    95.00, timestamptz '2025-01-06 17:20:00+00', 0),
        ('alice', 'Numbers and Arithmetic', 88.50, timestamptz '2025-01-08 18:05:00+00', 0),
        ('alice', 'Strings',                82.00, timestamptz '2025-01-12 19:40:00+00', 3),
        ('alice', 'Conditionals',           74.25, timestamptz '2025-01-14 20:10:00+00', 5),
        ('alice', 'For Loops',              61.00, timestamptz '2025-01-15 19:30:00+00', 6),
        ('bob',   'Variables and Types',    78.00, timestamptz '2025-01-10 09:15:00+00', 1),
        ('bob',   'Numbers and Arithmetic', 52.50, timestamptz '2025-01-13 08:45:00+00', 0),
        ('bob',   'Strings',                35.00, timestamptz '2025-01-14 09:00:00+00', 2),
        ('chen',  'Variables and Types',   100.00, timestamptz '2024-12-02 14:00:00+00', 0),
        ('chen',  'Conditionals',           96.00, timestamptz '2024-12-09 15:30:00+00', 0),
        ('chen',  'Lists',                  91.50, timestamptz '2025-01-03 16:10:00+00', 0),
        ('chen',  'Dictionaries',           84.00, timestamptz '2025-01-11 16:45:00+00', 4),
        ('chen',  'Defining Functions',     67.75, timestamptz '2025-01-15 17:05:00+00', 9),
        ('chen',  'Recursion',              22.00, timestamptz '2025-01-15 17:50:00+00', 1)
) AS v (username, topic, mastery_score, last_practiced, streak_days)
JOIN public.users AS u ON u.username = v.username
ON CONFLICT (user_id, topic) DO UPDATE
SET mastery_score  = EXCLUDED.mastery_score,
    last_practiced = EXCLUDED.last_practiced,
    streak_days    = EXCLUDED.streak_days
WHERE :'pgk8s_update_existing'::boolean
  AND (progress.mastery_score, progress.last_practiced, progress.streak_days)
      IS DISTINCT FROM
      (EXCLUDED.mastery_score, EXCLUDED.last_practiced, EXCLUDED.streak_days);
