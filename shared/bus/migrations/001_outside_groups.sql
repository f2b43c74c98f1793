-- Consumer groups of outside systems on a stream this service produces (`civic subscribers add`). Trimming
-- waits for them like for civic's own groups, but only within their limits: past max_lag entries behind or
-- max_age_seconds old, the group no longer holds trimming back (overrun_at says since when).
create table outside_groups (
    stream          text not null,
    name            text not null,
    max_lag         bigint not null check (max_lag > 0),
    max_age_seconds bigint not null check (max_age_seconds > 0),
    description     text,
    registered_at   timestamptz not null default now(),
    overrun_at      timestamptz,
    primary key (stream, name)
);
