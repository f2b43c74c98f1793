-- Tables of the bus that live in every service's schema.

-- Events written in the same transaction as the state change they describe; the relay publishes them.
create table outbox (
    position     bigserial primary key,
    id           uuid not null unique,
    tenant       text not null,
    stream       text not null,
    type         text not null,
    subject      text,
    envelope     text not null,
    created_at   timestamptz not null default now(),
    published_at timestamptz,
    stream_ms    bigint,
    stream_seq   bigint
);
create index outbox_unpublished on outbox (position) where published_at is null;
create index outbox_published on outbox (stream, stream_ms, stream_seq) where published_at is not null;

-- Last sequence number handed out per aggregate (subject), for the aggregatesequence extension.
create table aggregate_sequences (
    subject text primary key,
    last    bigint not null
);

-- Events this service has handled: the record that makes a redelivery a no-op.
create table processed_events (
    event_id     uuid primary key,
    stream       text not null,
    type         text not null,
    tenant       text not null,
    processed_at timestamptz not null default now()
);
create index processed_events_age on processed_events (processed_at);

-- Newest sequence number applied per subject, for consumers that must ignore stale events.
create table aggregate_versions (
    subject  text primary key,
    sequence bigint not null
);

-- Entries this service's consumer gave up on; listed, retried or dropped with `civic dlq`.
create table dead_letters (
    id          bigserial primary key,
    stream      text not null,
    entry_id    text not null,
    event_id    uuid,
    type        text,
    tenant      text,
    raw         text not null,
    error       text not null,
    deliveries  int not null,
    status      text not null default 'open' check (status in ('open', 'retried', 'dropped')),
    created_at  timestamptz not null default now(),
    resolved_at timestamptz,
    unique (stream, entry_id)
);

-- Last error per pending entry, so a dead letter can say why the entry kept failing.
create table delivery_failures (
    stream    text not null,
    entry_id  text not null,
    error     text not null,
    failures  int not null default 1,
    last_at   timestamptz not null default now(),
    primary key (stream, entry_id)
);

-- Per stream this service produces: the first entry id some consumer group has not yet acknowledged.
-- After Redis loses its data, the outbox is published again from here.
create table stream_watermarks (
    stream     text primary key,
    first_ms   bigint not null,
    first_seq  bigint not null,
    updated_at timestamptz not null default now()
);

-- Deadlines this service owns and the reminders sent for them (see shared/bus/deadlines.py).
create table deadlines (
    id         uuid primary key,
    tenant     text not null,
    kind       text not null,
    subject_id text not null,
    title      text,
    due_at     timestamptz not null,
    offsets    int[] not null,
    cancelled  boolean not null default false,
    unique (kind, subject_id)
);
create index deadlines_due on deadlines (due_at) where not cancelled;

create table deadline_reminders (
    deadline_id    uuid not null references deadlines (id) on delete cascade,
    offset_seconds int not null,
    due_at         timestamptz not null,
    outcome        text not null check (outcome in ('sent', 'late', 'skipped')),
    decided_at     timestamptz not null,
    primary key (deadline_id, offset_seconds, due_at)
);
