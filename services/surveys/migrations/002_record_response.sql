-- One response in one round trip: a single statement is its own transaction, so the submission key, the
-- code used up, the response, its texts, its counters and its event commit together or not at all (the event
-- through the bus's record_events, which owns the outbox's layout).
-- Returns null when stored, or the day of the first submission when the key was seen before (a retry).
-- Each statement of a volatile function reads a fresh snapshot, so the state read below is taken after the
-- shared lock was granted: a survey closed meanwhile (closing holds the lock exclusively) is seen closed.
create function record_response(
    p_lock bigint, p_tenant text, p_survey uuid, p_key_hash bytea, p_day date, p_token_hash bytea,
    p_id uuid, p_answers jsonb, p_text_ids uuid[], p_text_questions text[], p_text_bodies text[],
    p_shard smallint, p_keys text[], p_counts bigint[], p_totals numeric[],
    p_event_id uuid, p_stream text, p_event_type text, p_envelope text, p_channel text
) returns date
language plpgsql volatile as $$
declare
    v_first date;
    v_state text;
begin
    perform pg_advisory_xact_lock_shared(p_lock);
    if p_key_hash is not null then
        insert into submissions (tenant, survey_id, key_hash, day) values (p_tenant, p_survey, p_key_hash, p_day)
            on conflict do nothing returning day into v_first;
        if v_first is null then
            select s.day into v_first from submissions s
                where s.tenant = p_tenant and s.survey_id = p_survey and s.key_hash = p_key_hash;
            return v_first;
        end if;
    end if;
    select s.state into v_state from surveys s where s.tenant = p_tenant and s.id = p_survey;
    if v_state is null or v_state not in ('published', 'open') then
        raise exception 'survey-closed' using errcode = 'CV001';
    end if;
    if p_token_hash is not null then
        update access_tokens set used = true
            where tenant = p_tenant and survey_id = p_survey and token_hash = p_token_hash and not used;
        if not found then
            raise exception 'access-code-invalid' using errcode = 'CV002';
        end if;
        update surveys set mixed = false where tenant = p_tenant and id = p_survey and mixed;
    end if;
    insert into responses (id, tenant, survey_id, day, answers) values (p_id, p_tenant, p_survey, p_day, p_answers);
    insert into free_texts (id, tenant, survey_id, question_id, day, body)
        select u.id, p_tenant, p_survey, u.q, p_day, u.b
        from unnest(p_text_ids, p_text_questions, p_text_bodies) as u(id, q, b);
    -- Keys arrive sorted, so concurrent responses on one shard lock counter rows in one order.
    insert into result_counters (tenant, survey_id, key, shard, count, total)
        select p_tenant, p_survey, u.k, p_shard, u.c, u.t from unnest(p_keys, p_counts, p_totals) as u(k, c, t)
        on conflict (survey_id, key, shard) do update
        set count = result_counters.count + excluded.count, total = result_counters.total + excluded.total;
    -- The bus's one writer of outbox rows (shared/bus/migrations/002_record_events.sql). No subject: a per-survey
    -- sequence row would be one hot row every response waits on.
    perform record_events(
        array[p_event_id], array[p_tenant], array[p_stream], array[p_event_type], array[null::text],
        array[p_envelope], p_channel
    );
    return null;
end;
$$;
