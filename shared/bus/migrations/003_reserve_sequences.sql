-- The one place that numbers events per subject (aggregate_sequences), for Python (shared/bus/outbox.py) and for
-- services' own statements alike: a service that takes a lock and writes its state in one statement reserves
-- its events' numbers in that statement too, instead of in a round trip of its own while the lock is held.
-- Rows are locked in subject order, so concurrent writers cannot deadlock; a count of 0 reserves nothing.
create function reserve_sequences(p_subjects text[], p_counts bigint[])
returns table (subject text, last bigint)
language sql volatile as $$
    insert into aggregate_sequences as a (subject, last)
        select u.subject, u.n from unnest(p_subjects, p_counts) as u(subject, n) where u.n > 0 order by u.subject
        on conflict (subject) do update set last = a.last + excluded.last
        returning a.subject, a.last;
$$;
