-- The keyring as other services read it (shared/privacy.py: producer_key, producer_keys): the keys of
-- (id, tenant) pairs, those still there.
--
-- A function so that its statement is planned at every call with the keyring as large as it is then (and kept to
-- custom plans where PostgreSQL caches a SQL function's plan): a rush grows the keyring by tens of thousands of
-- keys in seconds, and as a prepared statement of the reader's own, the generic plan PostgreSQL settled on after
-- five calls was made while it was small (a sequential scan) and stayed in use until the next ANALYZE, 4.5 ms a
-- batch of mails instead of a few index lookups. It runs with the reader's rights (the grant of
-- shared/privacy.py: share_keyring) on this schema's keyring, whatever the reader's search path.
create function read_keys(p_ids uuid[], p_tenants text[]) returns table (id uuid, key bytea)
language sql stable set plan_cache_mode = force_custom_plan set search_path from current as $$
    select k.id, k.key from unnest(p_ids, p_tenants) as w(id, tenant)
        join person_keys k on k.id = w.id and k.tenant = w.tenant;
$$;
