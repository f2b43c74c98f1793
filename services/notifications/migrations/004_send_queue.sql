-- The deliveries still to send, in a narrow table of their own: the senders' claims and leases change these rows
-- only, and the delivery log's row changes once, at its outcome, in place (a HOT update: none of its indexes names
-- a column the outcome sets). With the queue's indexes on the log, every claim and every outcome wrote a new
-- version of the wide row into all six of its indexes; in a fan-out of 30,000 mails that was most of what
-- PostgreSQL did per mail.
--
-- A row here: the delivery is queued (or failed, due again at due_at), or, with a lease, being sent; attempts
-- counts the claims (each claim is an attempt) and goes to the log with the outcome.
create table send_queue (
    delivery_id  uuid primary key,
    channel      text not null check (channel in ('email', 'webhook')),
    due_at       timestamptz not null,
    attempts     int not null default 0,
    lease_until  timestamptz
);
create index send_queue_due on send_queue (channel, due_at) where lease_until is null;
create index send_queue_leased on send_queue (channel, lease_until) where lease_until is not null;

insert into send_queue (delivery_id, channel, due_at, attempts, lease_until)
select id, channel, next_attempt_at, attempts, case when state = 'sending' then lease_until end
from deliveries where state in ('queued', 'failed', 'sending');
-- 'sending' is what a lease in the queue says now; the log keeps what the row was before its claim.
update deliveries set state = case when attempts > 1 then 'failed' else 'queued' end where state = 'sending';

drop index deliveries_due;
drop index deliveries_leased;
alter table deliveries drop column lease_until;
-- Room on each page for a row's new version at its outcome, so that the update stays on the page (HOT).
alter table deliveries set (fillfactor = 75);

-- The delivery log as staff and the senders read it: a row with a lease in the queue is being sent, and its
-- attempts are the queue's until the outcome.
create view delivery_log as
select d.id, d.tenant, d.cause_event_id, d.channel, d.recipient_key, d.template, d.transactional, d.locale,
       d.address, d.registration_id, d.subscription_id, d.endpoint_id, d.meeting_id, d.survey_id, d.personal, d.body,
       case when q.lease_until is not null then 'sending' else d.state end as state,
       coalesce(q.attempts, d.attempts) as attempts,
       coalesce(q.due_at, d.next_attempt_at) as next_attempt_at,
       q.lease_until, d.last_answer, d.created_at, d.sent_at, d.mailbox_key, d.resends, d.resent_at
from deliveries d left join send_queue q on q.delivery_id = d.id;
