-- The recruitment source: job fairs (on-site 春风行动 fairs, livestreams),
-- their postings and participating employers. organizer_id and employer_id
-- are plain ids into the members source.
CREATE TABLE recruitment.events (
    id           text PRIMARY KEY CHECK (id <> ''),
    title        text NOT NULL CHECK (title <> ''),
    format       text NOT NULL CHECK (format IN ('ONSITE', 'LIVESTREAM')),
    organizer_id text NOT NULL,
    starts_at    timestamptz NOT NULL
);
CREATE INDEX events_organizer_idx ON recruitment.events (organizer_id, id);
CREATE INDEX events_starts_idx ON recruitment.events (starts_at);

-- Employers taking part in an event, whether or not they post a job there.
CREATE TABLE recruitment.event_employers (
    event_id    text NOT NULL REFERENCES recruitment.events (id) ON DELETE CASCADE,
    employer_id text NOT NULL,
    PRIMARY KEY (event_id, employer_id)
);

CREATE TABLE recruitment.postings (
    id          text PRIMARY KEY CHECK (id <> ''),
    event_id    text REFERENCES recruitment.events (id),
    employer_id text NOT NULL,
    title       text NOT NULL CHECK (title <> ''),
    sector      text NOT NULL CHECK (sector <> ''),
    headcount   integer NOT NULL CHECK (headcount >= 0),
    salary_min  numeric(12,2) CHECK (salary_min >= 0),
    salary_max  numeric(12,2) CHECK (salary_max >= 0),
    CHECK (salary_min IS NULL OR salary_max IS NULL OR salary_max >= salary_min)
);
CREATE INDEX postings_event_idx ON recruitment.postings (event_id, id);
CREATE INDEX postings_employer_idx ON recruitment.postings (employer_id);
