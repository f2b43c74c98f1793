-- Seat decisions for a batch of registrations of one meeting, taken in order under the meeting's lock.
--
-- This replaces register_seat (002, 004) and register_seats (003), which wrote registrations and events
-- themselves: the service had to build every event both ways (confirmed and waitlisted), sign a ticket for
-- every registration, and send all of it as JSON for the function to patch. Now this function only decides
-- and counts; the service then writes, in the same transaction, the registrations and exactly the events
-- that happened, with their real figures, and one seats-changed event per batch. It mirrors
-- services/registration/domain.py:allocate (confirmed while seats remain, else waitlisted if the meeting has a
-- waiting list, else refused).
drop function if exists register_seats(jsonb);
drop function if exists register_seat(
    uuid, uuid, uuid, text, text, int, int, text, text, text, text, text, int, boolean, jsonb, jsonb, timestamptz,
    text, jsonb, jsonb, text, text, boolean, float8
);

create function decide_seats(
    p_meeting uuid, p_ids uuid[], p_slots uuid[], p_seats int[], p_emails text[], p_phones text[],
    p_lock boolean default true, p_delay float8 default 0
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
    if p_lock then
        perform set_config('lock_timeout', '5s', true);
        perform pg_advisory_xact_lock(hashtextextended('registration/meeting/' || p_meeting::text, 0));
    end if;
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
        if p_delay > 0 then
            -- Only the concurrency test's control run: widens the gap between counting and writing.
            perform pg_sleep(p_delay);
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
