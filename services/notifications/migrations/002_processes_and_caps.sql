-- Processes the service has heard of (content's events): subscriptions are taken only for these.
create table processes (
    tenant      text not null,
    process_id  uuid not null,
    primary key (tenant, process_id)
);

-- Keyed hash of the inbox an address reaches (lower-cased, without "+tag"), for the cap on mails to
-- addresses nobody has confirmed yet; null on rows from before and on webhooks.
alter table deliveries add column mailbox_key text;
create index deliveries_mailbox on deliveries (mailbox_key, created_at) where mailbox_key is not null;
