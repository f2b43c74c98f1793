-- The tickets of the registrations a batch confirmed, set in the batch's transaction once they are signed
-- (services/registration/use_cases/registrations.py: decide_and_write).
--
-- A function so that its statement is planned at every call with the registrations table as large as it is then
-- (and kept to custom plans where PostgreSQL caches a SQL function's plan): as a prepared statement, the generic
-- plan PostgreSQL settled on after five batches was made while the table was small (a sequential scan) and
-- stayed in use until the next ANALYZE, so after a rush every batch that confirmed anyone read the whole table
-- while it held the meeting's lock (about 5 ms a batch at 20,000 registrations).
create function set_tickets(p_ids uuid[], p_codes text[]) returns void
language sql volatile set plan_cache_mode = force_custom_plan as $$
    update registrations r set ticket_code = t.code from unnest(p_ids, p_codes) as t(id, code) where r.id = t.id;
$$;
