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
    anonymised_at     timestamptz,
    -- What a person needs to take part (sign-language interpreter, step-free access ...), in their own words.
    -- Personal data: erased with the rest of the registration.
    accessibility_needs text
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

-- The keyring (shared/privacy.py): one AES-256 key per registration (and per data export). Personal data in
-- this service's events is sealed under these keys; erasure and retention delete them, which makes every copy
-- of those events unreadable at once (Redis, its AOF/RDB files and backups, the outbox). The notifications
-- role is granted SELECT on this table only (share_keyring), to open what it must mail.
create table person_keys (
    id         uuid primary key,
    tenant     text not null,
    key        bytea not null,
    created_at timestamptz not null default now()
);

-- Data exports per person (GDPR Art. 15), assembled from every service's answer to an export request.
-- The subject is kept only as keyed HMACs; the parts are sealed under the export's key (in person_keys), so
-- an expired export (or its key deleted by an erasure) is unreadable in every backup too.
create table data_exports (
    id            uuid primary key,
    tenant        text not null,
    email_hmac    text,
    phone_hmac    text,
    requested_at  timestamptz not null,
    expires_at    timestamptz not null,
    waiting_for   text[] not null,
    completed_at  timestamptz
);
create index data_exports_expiry on data_exports (expires_at);

create table data_export_parts (
    export_id   uuid not null references data_exports (id) on delete cascade,
    service     text not null,
    sealed      text not null,
    received_at timestamptz not null default now(),
    primary key (export_id, service)
);

-- Seat decisions for a batch of registrations of one meeting, taken in order under the meeting's lock.
--
-- This function is the seat rule that runs: it decides and counts; the service then writes, in the same
-- transaction, the registrations and exactly the events that happened, with their real figures, and one
-- seats-changed event per batch. services/registration/domain.py:allocate is the same rule written as a model
-- (confirmed while seats remain, else waitlisted if the meeting has a waiting list, else refused);
-- tests/integration/registration/test_seat_properties.py holds the two to the same answers.
create function decide_seats(
    p_meeting uuid, p_ids uuid[], p_slots uuid[], p_seats int[], p_emails text[], p_phones text[]
) returns table (
    ord int, outcome text, registration_id uuid, wait_position int, left_seats int,
    -- The whole meeting after the batch (a series of slots sums its slots), for its seats-changed event.
    total_capacity int, total_confirmed int, total_waitlisted int
)
language plpgsql volatile as $$
declare
    n int;
    v_count int := coalesce(array_length(p_ids, 1), 0);
    v_status text;
    v_waitlist boolean;
    -- The seat pool of the item at hand: the meeting's own, or its slot's.
    v_capacity int;
    v_taken int;
    v_waiting int;
    -- The meeting's own pool, written back once at the end.
    m_capacity int;
    m_taken int;
    m_waiting int;
    m_changed boolean := false;
    v_slot uuid;
    v_existing uuid;
    -- Contacts registered earlier in this batch (not yet stored: the service inserts after deciding).
    v_seen jsonb := '{}';
    v_key_email text;
    v_key_phone text;
    v_outcome text[] := array_fill(null::text, array[v_count]);
    v_rid uuid[] := array_fill(null::uuid, array[v_count]);
    v_position int[] := array_fill(null::int, array[v_count]);
    v_left int[] := array_fill(null::int, array[v_count]);
    v_total_capacity int;
    v_total_confirmed int;
    v_total_waitlisted int;
begin
    perform set_config('lock_timeout', '5s', true);
    perform pg_advisory_xact_lock(hashtextextended('registration/meeting/' || p_meeting::text, 0));
    -- Each statement of a volatile function takes a fresh snapshot: after the lock, this sees every
    -- registration committed before it.
    select m.status, m.waitlist, m.capacity, m.confirmed_seats, m.waitlisted
      into v_status, v_waitlist, m_capacity, m_taken, m_waiting
      from meetings m where m.id = p_meeting;

    for n in 1 .. v_count loop
        if v_status is distinct from 'published' then
            v_outcome[n] := 'not_published';
            continue;
        end if;
        if p_slots[n] is null then
            v_capacity := m_capacity; v_taken := m_taken; v_waiting := m_waiting;
        else
            select s.id, s.capacity, s.confirmed_seats, s.waitlisted into v_slot, v_capacity, v_taken, v_waiting
              from slots s where s.id = p_slots[n] and s.meeting_id = p_meeting;
            if v_slot is null then
                -- The slot was removed since the request was validated.
                v_outcome[n] := 'unknown_slot';
                continue;
            end if;
        end if;

        -- The same person again: first earlier in this batch, then among stored registrations, one lookup
        -- per contact so that each matches a unique index exactly (registrations_one_email/_phone).
        v_key_email := case when p_emails[n] is not null
            then 'e/' || coalesce(p_slots[n], p_meeting) || '/' || p_emails[n] end;
        v_key_phone := case when p_phones[n] is not null
            then 'p/' || coalesce(p_slots[n], p_meeting) || '/' || p_phones[n] end;
        v_existing := coalesce((v_seen ->> v_key_email)::uuid, (v_seen ->> v_key_phone)::uuid);
        if v_existing is null and p_emails[n] is not null then
            select r.id into v_existing from registrations r
             where r.meeting_id = p_meeting and coalesce(r.slot_id, r.meeting_id) = coalesce(p_slots[n], p_meeting)
               and r.email = p_emails[n] and r.status <> 'cancelled';
        end if;
        if v_existing is null and p_phones[n] is not null then
            select r.id into v_existing from registrations r
             where r.meeting_id = p_meeting and coalesce(r.slot_id, r.meeting_id) = coalesce(p_slots[n], p_meeting)
               and r.phone = p_phones[n] and r.status <> 'cancelled';
        end if;
        if v_existing is not null then
            v_outcome[n] := 'existing';
            v_rid[n] := v_existing;
            continue;
        end if;

        if v_capacity is null or v_taken + p_seats[n] <= v_capacity then
            v_outcome[n] := 'confirmed';
            v_taken := v_taken + p_seats[n];
        elsif v_waitlist then
            v_outcome[n] := 'waitlisted';
            v_waiting := v_waiting + 1;
            v_position[n] := v_waiting;
        else
            v_outcome[n] := 'refused';
            v_left[n] := greatest(v_capacity - v_taken, 0);
            continue;
        end if;
        v_rid[n] := p_ids[n];
        v_left[n] := case when v_capacity is null then null else greatest(v_capacity - v_taken, 0) end;
        if v_key_email is not null then
            v_seen := v_seen || jsonb_build_object(v_key_email, p_ids[n]);
        end if;
        if v_key_phone is not null then
            v_seen := v_seen || jsonb_build_object(v_key_phone, p_ids[n]);
        end if;
        if p_slots[n] is null then
            m_taken := v_taken; m_waiting := v_waiting; m_changed := true;
        else
            update slots set confirmed_seats = v_taken, waitlisted = v_waiting where id = p_slots[n];
        end if;
    end loop;

    if m_changed then
        update meetings set confirmed_seats = m_taken, waitlisted = m_waiting where id = p_meeting;
    end if;
    if exists (select 1 from slots where meeting_id = p_meeting) then
        select sum(s.confirmed_seats), sum(s.waitlisted),
               case when bool_or(s.capacity is null) then null else sum(s.capacity) end
          into v_total_confirmed, v_total_waitlisted, v_total_capacity from slots s where s.meeting_id = p_meeting;
    else
        v_total_capacity := m_capacity; v_total_confirmed := m_taken; v_total_waitlisted := m_waiting;
    end if;

    return query select i, v_outcome[i], v_rid[i], v_position[i], v_left[i],
                        v_total_capacity, v_total_confirmed, v_total_waitlisted
                   from generate_series(1, v_count) as i;
end;
$$;
