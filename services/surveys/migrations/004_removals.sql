-- Staff removed a free text (a respondent wrote a name or an address into it) or a whole response.
-- The record says that it happened, when, by whom and why; it holds neither the text nor anything that leads
-- to the response or its writer (no response id, no text id, no day of the response).
create table removals (
    id          uuid primary key,
    tenant      text not null,
    survey_id   uuid not null references surveys (id) on delete cascade,
    question_id text not null,
    scope       text not null check (scope in ('text', 'response')),
    reason      text not null default '',
    removed_by  text not null,
    removed_at  timestamptz not null
);
create index removals_by_survey on removals (tenant, survey_id, removed_at);
