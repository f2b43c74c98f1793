-- The keyring (shared/privacy.py): one AES-256 key per registration (and per data export). Personal data in
-- this service's events is sealed under these keys; erasure and retention delete them, which makes every copy
-- of those events unreadable at once (Redis, its AOF/RDB files and backups, the outbox). The notifications
-- role is granted SELECT on this table only (share_keyring), to open what it must mail.
create table person_keys (
    id         uuid primary key,
    tenant     text not null,
    key        bytea not null,
    created_at timestamptz not null default now()
);

-- Data exports per person (GDPR Art. 15), assembled from every service's answer to an export request.
-- The subject is kept only as keyed HMACs; the parts are sealed under the export's key (in person_keys), so
-- an expired export (or its key deleted by an erasure) is unreadable in every backup too.
create table data_exports (
    id            uuid primary key,
    tenant        text not null,
    email_hmac    text,
    phone_hmac    text,
    requested_at  timestamptz not null,
    expires_at    timestamptz not null,
    waiting_for   text[] not null,
    completed_at  timestamptz
);
create index data_exports_expiry on data_exports (expires_at);

create table data_export_parts (
    export_id   uuid not null references data_exports (id) on delete cascade,
    service     text not null,
    sealed      text not null,
    received_at timestamptz not null default now(),
    primary key (export_id, service)
);
