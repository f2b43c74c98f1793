-- Tables of the notifications service. Every row carries its tenant; personal data (addresses, names,
-- ticket codes) sits in columns that erasure blanks.

-- People who receive mail outside a registration: subscribers of a process's news.
create table recipients (
    id            uuid primary key,
    tenant        text not null,
    address       text,
    -- sha256 of the lower-cased address, as registration publishes it in PersonErasedV1.
    email_sha256  text not null,
    -- HMAC of the address (see domain.recipient_key), the recipient part of the delivery log's key.
    recipient_key text not null,
    locale        text not null default 'de' check (locale in ('de', 'en')),
    preferences   jsonb not null default '{}',
    created_at    timestamptz not null default now(),
    unique (tenant, email_sha256)
);

-- Subscriptions to a process, double opt-in: pending until the signed link in the first mail is followed.
create table subscriptions (
    id            uuid primary key,
    tenant        text not null,
    recipient_id  uuid not null references recipients (id) on delete cascade,
    process_id    uuid not null,
    state         text not null check (state in ('pending', 'confirmed', 'unsubscribed')),
    created_at    timestamptz not null,
    confirmed_at  timestamptz,
    unique (tenant, recipient_id, process_id)
);
create index subscriptions_process on subscriptions (tenant, process_id) where state = 'confirmed';

-- Projection of registration's meetings, so mails can name title, venue and time.
create table meetings (
    tenant      text not null,
    meeting_id  uuid primary key,
    process_id  uuid,
    title       text not null,
    starts_at   timestamptz not null,
    ends_at     timestamptz not null,
    timezone    text not null,
    venue       jsonb,
    url         text,
    cancelled   boolean not null default false
);

-- Projection of surveys (for "survey closes" reminders to the subscribers of its process).
create table surveys (
    tenant      text not null,
    survey_id   uuid primary key,
    process_id  uuid,
    title       text not null,
    closes_at   timestamptz,
    url         text
);

-- Who registered for which meeting, with the contact needed to remind them; erased with the registration.
create table registrations (
    tenant          text not null,
    registration_id uuid primary key,
    meeting_id      uuid not null,
    status          text not null check (status in ('confirmed', 'waitlisted', 'cancelled', 'checked_in')),
    address         text,
    email_sha256    text,
    recipient_key   text,
    name            text,
    locale          text not null default 'de'
);
create index registrations_meeting on registrations (tenant, meeting_id);

-- What a cause event says that every message it causes needs (title, url ...); no personal data.
create table causes (
    event_id    uuid primary key,
    tenant      text not null,
    type        text not null,
    data        jsonb not null,
    created_at  timestamptz not null default now()
);

-- The delivery log: one row per (cause event, recipient, channel), whatever the redelivery.
create table deliveries (
    id               uuid primary key default gen_random_uuid(),
    tenant           text not null,
    cause_event_id   uuid not null,
    channel          text not null check (channel in ('email', 'webhook')),
    -- HMAC of the address (mail) or the endpoint id (webhook): the recipient part of the unique key.
    recipient_key    text not null,
    template         text not null,
    transactional    boolean not null,
    locale           text not null default 'de',
    address          text,
    registration_id  uuid,
    subscription_id  uuid,
    endpoint_id      uuid,
    meeting_id       uuid,
    survey_id        uuid,
    -- Per-recipient values for the template (name, ticket code, links); blanked on erasure.
    personal         jsonb not null default '{}',
    -- The webhook body (a CloudEvent without personal fields).
    body             text,
    state            text not null default 'queued'
                     check (state in ('queued', 'sending', 'sent', 'failed', 'given_up')),
    attempts         int not null default 0,
    next_attempt_at  timestamptz not null,
    lease_until      timestamptz,
    last_answer      text,
    created_at       timestamptz not null,
    sent_at          timestamptz,
    unique (cause_event_id, recipient_key, channel)
);
create index deliveries_due on deliveries (channel, next_attempt_at) where state in ('queued', 'failed');
create index deliveries_leased on deliveries (channel, lease_until) where state = 'sending';
create index deliveries_registration on deliveries (registration_id) where registration_id is not null;
create index deliveries_recipient on deliveries (tenant, recipient_key);

-- Webhook endpoints registered by staff.
create table webhook_endpoints (
    id              uuid primary key,
    tenant          text not null,
    url             text not null,
    event_types     text[] not null,
    secret          text not null,
    description     text,
    enabled         boolean not null default true,
    disabled_reason text,
    created_at      timestamptz not null
);
create index webhook_endpoints_tenant on webhook_endpoints (tenant) where enabled;
