-- Surveys, single-use access codes, anonymous responses and precomputed results.
--
-- Anonymity by construction: access_tokens and responses share no column, no id and no timestamp;
-- responses have random ids and only a day; submissions keep a hash of the client's key and no response id.
-- System columns (xmin, ctid) of rows written in one transaction still pair them until the mixing job
-- rewrites them (see docs/surveys.md, "Unlinkability").

create table surveys (
    id                uuid primary key,
    tenant            text not null,
    slug              text not null,
    title             text not null,
    introduction      text not null default '',
    estimated_minutes int,
    opens_at          timestamptz not null,
    closes_at         timestamptz not null,
    results_public    boolean not null default false,
    process_id        uuid,
    access            text not null default 'public' check (access in ('public', 'token')),
    reminder_offsets  int[] not null,
    definition        jsonb not null,
    state             text not null default 'draft' check (state in ('draft', 'published', 'open', 'closed')),
    token_secret      bytea not null,
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    published_at      timestamptz,
    opened_at         timestamptz,
    closed_at         timestamptz,
    mixed             boolean not null default true,
    unique (tenant, slug)
);
create index surveys_to_open on surveys (opens_at) where state = 'published';
create index surveys_to_close on surveys (closes_at) where state in ('published', 'open');

-- Single-use codes for letter-based surveys: a keyed hash and whether it was used. Nothing else.
create table access_tokens (
    tenant     text not null,
    survey_id  uuid not null references surveys (id) on delete cascade,
    token_hash bytea not null,
    used       boolean not null default false,
    primary key (survey_id, token_hash)
);

-- One row per response: a random id, the day, the accepted answers.
create table responses (
    id        uuid primary key,
    tenant    text not null,
    survey_id uuid not null references surveys (id) on delete cascade,
    day       date not null,
    answers   jsonb not null
);
create index responses_by_survey on responses (survey_id, id);

-- Free-text answers again, one row each, for keyset-paginated listing per question.
create table free_texts (
    id          uuid primary key,
    tenant      text not null,
    survey_id   uuid not null references surveys (id) on delete cascade,
    question_id text not null,
    day         date not null,
    body        text not null
);
create index free_texts_page on free_texts (survey_id, question_id, id);

-- Submission keys seen (hashed): a retry with the same key is answered from here and stores nothing.
create table submissions (
    tenant    text not null,
    survey_id uuid not null references surveys (id) on delete cascade,
    key_hash  bytea not null,
    day       date not null,
    primary key (survey_id, key_hash)
);

-- Results, maintained in the transaction of each response. Each logical counter is split over shards
-- (chosen at random per response) so concurrent responses do not queue on one row; reads sum the shards.
create table result_counters (
    tenant    text not null,
    survey_id uuid not null references surveys (id) on delete cascade,
    key       text not null,
    shard     smallint not null,
    count     bigint not null default 0,
    total     numeric not null default 0,
    primary key (survey_id, key, shard)
);
