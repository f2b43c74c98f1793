-- Drafts for save-and-resume without an account: answers so far, found by a keyed hash of the random resume
-- code shown to the person. No identity, no access code, no times other than the end: a draft ends when its
-- survey closes (the clock loop deletes it then) or when it is submitted (in the response's transaction).
create table drafts (
    tenant     text not null,
    survey_id  uuid not null references surveys (id) on delete cascade,
    code_hash  bytea not null,
    answers    jsonb not null default '{}',
    expires_at timestamptz not null,
    primary key (survey_id, code_hash)
);
create index drafts_expiry on drafts (expires_at);
