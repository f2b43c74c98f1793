-- The one writer of outbox rows, for Python (shared/bus/outbox.py) and for services' SQL functions alike, so the
-- table's layout lives here only. Rows are written in the caller's transaction; the NOTIFY that wakes the relay
-- is delivered at commit, and only then.
create function record_events(
    p_ids uuid[], p_tenants text[], p_streams text[], p_types text[], p_subjects text[], p_envelopes text[],
    p_channel text
) returns void
language sql volatile as $$
    insert into outbox (id, tenant, stream, type, subject, envelope)
        select * from unnest(p_ids, p_tenants, p_streams, p_types, p_subjects, p_envelopes);
    select pg_notify(p_channel, '');
$$;
