-- Every change to what a public process page shows notifies the channel civic_content_pages with the row's
-- tenant, when its transaction commits: each process's LISTEN connection (services/content/pages.py) then drops
-- that tenant's cached pages, so a cached page is served without asking PostgreSQL while nothing changed.
-- PostgreSQL sends one notification per channel and payload per transaction, however many rows it touched.
-- QR codes and their scan counters are not on the page and stay out of it (a scan is an upsert per request).
create function notify_content_pages() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        perform pg_notify('civic_content_pages', old.tenant);
    else
        perform pg_notify('civic_content_pages', new.tenant);
        if tg_op = 'UPDATE' and new.tenant is distinct from old.tenant then
            perform pg_notify('civic_content_pages', old.tenant);
        end if;
    end if;
    return null;
end
$$;

create trigger processes_pages after insert or update or delete on processes
    for each row execute function notify_content_pages();
create trigger phases_pages after insert or update or delete on phases
    for each row execute function notify_content_pages();
create trigger steps_pages after insert or update or delete on steps
    for each row execute function notify_content_pages();
create trigger contacts_pages after insert or update or delete on contacts
    for each row execute function notify_content_pages();
create trigger attachments_pages after insert or update or delete on attachments
    for each row execute function notify_content_pages();
create trigger refs_pages after insert or update or delete on refs
    for each row execute function notify_content_pages();
create trigger articles_pages after insert or update or delete on articles
    for each row execute function notify_content_pages();
create trigger meeting_state_pages after insert or update or delete on meeting_state
    for each row execute function notify_content_pages();
create trigger survey_state_pages after insert or update or delete on survey_state
    for each row execute function notify_content_pages();
