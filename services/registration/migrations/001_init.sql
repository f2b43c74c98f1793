-- Meetings (the things people attend), their bookable slots, registrations and check-ins.

create table meetings (
    id                      uuid primary key,
    tenant                  text not null,
    status                  text not null default 'draft' check (status in ('draft', 'published', 'cancelled')),
    title                   text not null,
    description             text not null default '',
    venue                   jsonb,
    starts_at               timestamptz not null,
    ends_at                 timestamptz not null,
    timezone                text not null default 'Europe/Berlin',
    capacity                int check (capacity is null or capacity >= 0),
    waitlist                boolean not null default true,
    registration_opens_at   timestamptz,
    registration_closes_at  timestamptz,
    attestations            jsonb not null default '[]',
    questions               jsonb not null default '[]',
    max_companions          int not null default 0,
    min_age                 int,
    max_age                 int,
    guardian_consent        boolean not null default false,
    reminder_offsets        int[] not null default '{259200,86400}',
    process_id              uuid,
    -- Ed25519 key pair that signs this meeting's tickets (raw bytes).
    signing_key             bytea not null,
    public_key              bytea not null,
    cancel_reason           text,
    anonymised_at           timestamptz,
    -- Seat counters of a meeting without slots, changed only under the meeting's lock (flat cost per
    -- registration however many are stored); registrations are the truth they are checked against.
    confirmed_seats         int not null default 0,
    waitlisted              int not null default 0,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    check (ends_at > starts_at)
);
create index meetings_tenant on meetings (tenant, starts_at);
create index meetings_prefix on meetings (tenant, substring(id::text, 1, 8));
create index meetings_retention on meetings (ends_at) where anonymised_at is null;

-- A series of bookable time slots of one meeting, each with its own capacity.
create table slots (
    id         uuid primary key,
    tenant     text not null,
    meeting_id uuid not null references meetings (id) on delete cascade,
    starts_at  timestamptz not null,
    ends_at    timestamptz not null,
    capacity   int check (capacity is null or capacity >= 0),
    confirmed_seats int not null default 0,
    waitlisted      int not null default 0,
    check (ends_at > starts_at)
);
create index slots_meeting on slots (meeting_id, starts_at);

create table registrations (
    id                uuid primary key,
    -- Orders the waiting list: first in, first out.
    seq               bigserial not null,
    tenant            text not null,
    meeting_id        uuid not null references meetings (id),
    slot_id           uuid references slots (id),
    -- The citizen's own link; an id alone reveals nothing.
    secret            text not null unique,
    status            text not null check (status in ('confirmed', 'waitlisted', 'cancelled')),
    seats             int not null check (seats >= 1),
    companions        int not null default 0,
    channel           text not null default 'online' check (channel in ('online', 'email', 'phone', 'in_person')),
    name              text,
    email             text,
    phone             text,
    locale            text not null default 'de',
    age               int,
    guardian_consent  boolean not null default false,
    answers           jsonb not null default '{}',
    attestations      jsonb not null default '[]',
    privacy_consent_at timestamptz,
    ticket_code       text,
    created_at        timestamptz not null,
    confirmed_at      timestamptz,
    cancelled_at      timestamptz,
    cancelled_by      text,
    erased_at         timestamptz,
    anonymised_at     timestamptz
);
create index registrations_meeting on registrations (meeting_id, status, seq) include (seats, slot_id);
create index registrations_email on registrations (tenant, email) where email is not null;
create index registrations_phone on registrations (tenant, phone) where phone is not null;
-- One active registration per person and meeting (slot); the service checks first, this is the backstop.
create unique index registrations_one_email on registrations (meeting_id, coalesce(slot_id, meeting_id), email)
    where status <> 'cancelled' and email is not null;
create unique index registrations_one_phone on registrations (meeting_id, coalesce(slot_id, meeting_id), phone)
    where status <> 'cancelled' and phone is not null;

create table checkins (
    id              uuid primary key,
    tenant          text not null,
    meeting_id      uuid not null references meetings (id),
    registration_id uuid not null unique references registrations (id),
    nonce           text not null,
    checked_in_at   timestamptz not null,
    unique (meeting_id, nonce)
);
