-- register_seat (002) again, with the duplicate check split by contact so that each lookup uses its unique
-- index whatever plan PostgreSQL caches for the function. Otherwise unchanged.
create or replace function register_seat(
    p_meeting uuid, p_slot uuid, p_id uuid, p_tenant text, p_secret text, p_seats int, p_companions int,
    p_channel text, p_name text, p_email text, p_phone text, p_locale text, p_age int, p_guardian boolean,
    p_answers jsonb, p_attestations jsonb, p_now timestamptz, p_ticket text,
    p_if_confirmed jsonb, p_if_waitlisted jsonb, p_subject text, p_notify text,
    p_lock boolean default true, p_delay float8 default 0
) returns table (outcome text, registration_id uuid, wait_position int, left_seats int)
language plpgsql volatile as $$
declare
    v_status text;
    v_waitlist boolean;
    v_capacity int;
    v_taken int;
    v_waiting int;
    v_existing uuid;
    v_outcome text;
    v_events jsonb;
    v_last bigint;
    v_n int;
    v_left int;
    v_seats_total int;
    v_wait_total int;
    v_cap_total int;
    v_slotted boolean;
    v_slot uuid;
begin
    if p_lock then
        perform set_config('lock_timeout', '5s', true);
        perform pg_advisory_xact_lock(hashtextextended('registration/meeting/' || p_meeting::text, 0));
    end if;
    -- Each statement of a volatile function takes a fresh snapshot: after the lock, this sees every
    -- registration committed before it.
    select m.status, m.waitlist,
           case when p_slot is null then m.capacity else s.capacity end,
           case when p_slot is null then m.confirmed_seats else s.confirmed_seats end,
           case when p_slot is null then m.waitlisted else s.waitlisted end,
           s.id
      into v_status, v_waitlist, v_capacity, v_taken, v_waiting, v_slot
      from meetings m left join slots s on s.id = p_slot and s.meeting_id = m.id
     where m.id = p_meeting;
    if v_status is distinct from 'published' then
        return query select 'not_published'::text, null::uuid, null::int, null::int;
        return;
    end if;
    if p_slot is not null and v_slot is null then
        -- The slot was removed since the request was validated.
        return query select 'unknown_slot'::text, null::uuid, null::int, null::int;
        return;
    end if;
    -- One lookup per contact, each matching a unique index exactly (registrations_one_email/_phone). With
    -- both in one "or", the cached generic plan scanned every registration of the meeting: in a rush each
    -- registration cost more than the one before.
    if p_email is not null then
        select r.id into v_existing from registrations r
         where r.meeting_id = p_meeting and coalesce(r.slot_id, r.meeting_id) = coalesce(p_slot, p_meeting)
           and r.email = p_email and r.status <> 'cancelled';
    end if;
    if v_existing is null and p_phone is not null then
        select r.id into v_existing from registrations r
         where r.meeting_id = p_meeting and coalesce(r.slot_id, r.meeting_id) = coalesce(p_slot, p_meeting)
           and r.phone = p_phone and r.status <> 'cancelled';
    end if;
    if v_existing is not null then
        return query select 'existing'::text, v_existing, null::int, null::int;
        return;
    end if;
    if v_capacity is null or v_taken + p_seats <= v_capacity then
        v_outcome := 'confirmed';
    elsif v_waitlist then
        v_outcome := 'waitlisted';
    else
        return query select 'refused'::text, null::uuid, null::int, greatest(v_capacity - v_taken, 0);
        return;
    end if;
    if p_delay > 0 then
        -- Only the concurrency test's control run: widens the gap between counting and writing.
        perform pg_sleep(p_delay);
    end if;

    if v_outcome = 'confirmed' then
        v_taken := v_taken + p_seats;
    else
        v_waiting := v_waiting + 1;
    end if;
    v_left := case when v_capacity is null then null else greatest(v_capacity - v_taken, 0) end;

    if p_slot is null then
        update meetings set confirmed_seats = v_taken, waitlisted = v_waiting where id = p_meeting;
    else
        update slots set confirmed_seats = v_taken, waitlisted = v_waiting where id = p_slot;
    end if;
    insert into registrations (id, tenant, meeting_id, slot_id, secret, status, seats, companions, channel,
        name, email, phone, locale, age, guardian_consent, answers, attestations, privacy_consent_at,
        ticket_code, created_at, confirmed_at)
    values (p_id, p_tenant, p_meeting, p_slot, p_secret, v_outcome, p_seats, p_companions, p_channel,
        p_name, p_email, p_phone, p_locale, p_age, p_guardian, p_answers, p_attestations, p_now,
        case when v_outcome = 'confirmed' then p_ticket end, p_now,
        case when v_outcome = 'confirmed' then p_now end);

    -- Whole-meeting figures for SeatsChangedV1 (a series of slots sums its slots).
    select exists (select 1 from slots where meeting_id = p_meeting) into v_slotted;
    if v_slotted then
        select sum(confirmed_seats), sum(waitlisted),
               case when bool_or(capacity is null) then null else sum(capacity) end
          into v_seats_total, v_wait_total, v_cap_total from slots where meeting_id = p_meeting;
    else
        v_seats_total := v_taken;
        v_wait_total := v_waiting;
        v_cap_total := v_capacity;
    end if;

    v_events := case when v_outcome = 'confirmed' then p_if_confirmed else p_if_waitlisted end;
    v_n := jsonb_array_length(v_events);
    insert into aggregate_sequences (subject, last) values (p_subject, v_n)
        on conflict (subject) do update set last = aggregate_sequences.last + v_n
        returning last into v_last;
    insert into outbox (id, tenant, stream, type, subject, envelope)
    select (e->>'id')::uuid, p_tenant, e->>'stream', e->>'type', p_subject,
           (case
                when e->>'type' like '%.registration.confirmed.v1' then
                    jsonb_set(e->'envelope', '{data,seats_left}', coalesce(to_jsonb(v_left), 'null'))
                when e->>'type' like '%.registration.waitlisted.v1' then
                    jsonb_set(e->'envelope', '{data,position}', to_jsonb(v_waiting))
                when e->>'type' like '%.meeting.seats_changed.v1' then
                    jsonb_set(jsonb_set(jsonb_set(jsonb_set(e->'envelope',
                        '{data,confirmed}', to_jsonb(v_seats_total)),
                        '{data,waitlisted}', to_jsonb(v_wait_total)),
                        '{data,capacity}', coalesce(to_jsonb(v_cap_total), 'null')),
                        '{data,seats_left}', coalesce(to_jsonb(greatest(v_cap_total - v_seats_total, 0)), 'null'))
                else e->'envelope'
            end || jsonb_build_object('aggregatesequence', v_last - v_n + ord))::text
      from jsonb_array_elements(v_events) with ordinality as x(e, ord);
    perform pg_notify(p_notify, '');

    return query select v_outcome, p_id,
        case when v_outcome = 'waitlisted' then v_waiting else null end, v_left;
end;
$$;
