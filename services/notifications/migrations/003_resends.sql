-- Staff may send a webhook delivery again (POST /deliveries/{id}/resend): how often that was done, and when last.
alter table deliveries add column resends int not null default 0;
alter table deliveries add column resent_at timestamptz;
