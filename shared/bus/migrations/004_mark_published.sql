-- The relay's mark on a pass's rows once Redis accepted them: published, with their stream entry ids.
--
-- A function so that its statement is planned at every call with the outbox as large as it is then (and kept to
-- custom plans where PostgreSQL caches a SQL function's plan): the outbox grows from a few rows to tens of
-- thousands in a rush and shrinks again when pruned. As a prepared statement of its own, the generic plan
-- PostgreSQL settles on after five calls was made while the table was small (a sequential scan) and stayed in use
-- until the next ANALYZE: during a rush's aftermath, marking a few rows read the whole table, 9.7 ms a pass
-- instead of 0.5 (docs/performance.md).
create function mark_published(p_positions bigint[], p_ms bigint[], p_seqs bigint[]) returns void
language sql volatile set plan_cache_mode = force_custom_plan as $$
    update outbox o set published_at = now(), stream_ms = u.ms, stream_seq = u.seq
        from unnest(p_positions, p_ms, p_seqs) as u(position, ms, seq)
        where o.position = u.position;
$$;
