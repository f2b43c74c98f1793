-- The call-back list: people the service cannot mail (no e-mail address) who must hear of a change to their
-- registration by phone. A row is written in the transaction of the change itself (a promotion from the waiting
-- list, a change of the meeting's time or place, its cancellation); staff mark each call done. The row holds no
-- personal data of its own (name and phone are read from the registration, which erasure blanks), and erasure
-- and retention delete the rows of the registrations they blank.
create table callbacks (
    id              uuid primary key,
    tenant          text not null,
    meeting_id      uuid not null references meetings (id),
    registration_id uuid not null references registrations (id),
    reason          text not null check (reason in ('promoted', 'meeting_changed', 'meeting_cancelled')),
    created_at      timestamptz not null,
    done_at         timestamptz,
    -- The staff person (their subject) who marked the call done.
    done_by         text
);
create index callbacks_open on callbacks (tenant, created_at) where done_at is null;
create index callbacks_done on callbacks (tenant, done_at) where done_at is not null;
create index callbacks_registration on callbacks (registration_id);
