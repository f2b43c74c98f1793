-- Several registrations of one meeting in one transaction (group commit): in a rush, the requests that arrive
-- while one transaction commits go together into the next, so a meeting's registrations are no longer bound
-- to one WAL flush each. Items are taken in order; each is decided by register_seat under the same lock.
create function register_seats(p_items jsonb)
returns table (ord bigint, outcome text, registration_id uuid, wait_position int, left_seats int)
language plpgsql volatile as $$
declare
    i jsonb;
    n bigint;
begin
    for i, n in select e, o from jsonb_array_elements(p_items) with ordinality as x(e, o) loop
        return query select n, r.outcome, r.registration_id, r.wait_position, r.left_seats
          from register_seat(
            (i->>'meeting')::uuid, (i->>'slot')::uuid, (i->>'id')::uuid, i->>'tenant', i->>'secret',
            (i->>'seats')::int, (i->>'companions')::int, i->>'channel', i->>'name', i->>'email', i->>'phone',
            i->>'locale', (i->>'age')::int, (i->>'guardian')::boolean, i->'answers', i->'attestations',
            (i->>'now')::timestamptz, i->>'ticket', i->'if_confirmed', i->'if_waitlisted', i->>'subject',
            i->>'notify', true, 0) as r;
    end loop;
end;
$$;
