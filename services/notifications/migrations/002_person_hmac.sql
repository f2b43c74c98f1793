-- registration's person.erased.v2 names the person by a keyed HMAC (shared.privacy.person_hmac with
-- CIVIC_PRIVACY_SECRET) instead of a plain sha256; recipients keep that HMAC so an erasure finds them.
alter table recipients add column email_hmac text;
create index recipients_email_hmac on recipients (tenant, email_hmac) where email_hmac is not null;
