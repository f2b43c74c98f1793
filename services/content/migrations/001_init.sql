-- The content service's tables. Texts shown to citizens are jsonb {"de": ..., "en": ...}: German is required,
-- English optional (reads fall back to German). Every row carries its tenant; every query filters by it.

create table processes (
    tenant        text not null,
    id            uuid not null primary key,
    slug          text not null,
    title         jsonb not null,
    motto         jsonb,
    summary       jsonb,
    funding       jsonb not null default '[]',
    status        text not null default 'draft' check (status in ('draft', 'scheduled', 'published')),
    publish_at    timestamptz,
    published_at  timestamptz,
    created_at    timestamptz not null,
    updated_at    timestamptz not null,
    -- Raised by triggers whenever anything shown on the process page changes (see the end of this file).
    revision      bigint not null default 0,
    unique (tenant, slug)
);
create index processes_due on processes (publish_at) where status = 'scheduled';

create table phases (
    tenant        text not null,
    id            uuid not null primary key,
    process_id    uuid not null references processes (id) on delete cascade,
    position      int not null default 0,
    title         jsonb not null,
    description   jsonb,
    starts_on     date not null,
    ends_on       date,
    -- Set once, by the transition that records PhaseStartedV1; the guard that makes the event exactly-once.
    announced_at  timestamptz,
    check (ends_on is null or ends_on >= starts_on)
);
create index phases_process on phases (tenant, process_id);
create index phases_unannounced on phases (starts_on) where announced_at is null;

create table steps (
    tenant        text not null,
    id            uuid not null primary key,
    process_id    uuid not null references processes (id) on delete cascade,
    number        text not null,
    kind          text not null default 'step' check (kind in ('step', 'measure', 'quick_project')),
    title         jsonb not null,
    body_md       jsonb,
    body_html     jsonb,
    unique (tenant, process_id, number)
);

create table articles (
    tenant        text not null,
    id            uuid not null primary key,
    process_id    uuid references processes (id) on delete cascade,
    kind          text not null check (kind in ('page', 'news')),
    slug          text not null,
    title         jsonb not null,
    summary       jsonb,
    body_md       jsonb not null,
    -- Rendered and sanitised when written, so reads never render Markdown.
    body_html     jsonb not null,
    status        text not null default 'draft' check (status in ('draft', 'scheduled', 'published')),
    publish_at    timestamptz,
    published_at  timestamptz,
    created_at    timestamptz not null,
    updated_at    timestamptz not null,
    unique (tenant, kind, slug)
);
create index articles_due on articles (publish_at) where status = 'scheduled';
create index articles_news on articles (tenant, process_id, published_at desc) where kind = 'news';

create table contacts (
    tenant        text not null,
    id            uuid not null primary key,
    process_id    uuid not null references processes (id) on delete cascade,
    position      int not null default 0,
    name          text not null,
    role          jsonb,
    unit          jsonb,
    email         text,
    phone         text,
    address       text,
    opening_hours jsonb
);
create index contacts_process on contacts (tenant, process_id);

create table attachments (
    tenant        text not null,
    id            uuid not null primary key,
    process_id    uuid not null references processes (id) on delete cascade,
    position      int not null default 0,
    title         jsonb not null,
    url           text not null,
    media_type    text
);

-- Ids of meetings (registration service) and surveys (surveys service) a process refers to.
create table refs (
    tenant        text not null,
    id            uuid not null primary key,
    process_id    uuid not null references processes (id) on delete cascade,
    kind          text not null check (kind in ('meeting', 'survey')),
    ref_id        uuid not null,
    position      int not null default 0,
    unique (tenant, process_id, kind, ref_id)
);

-- Projections of other services' events: what the public page shows live. Fed only by the bus.
create table meeting_state (
    tenant                  text not null,
    meeting_id              uuid not null,
    title                   text,
    starts_at               timestamptz,
    ends_at                 timestamptz,
    venue                   jsonb,
    capacity                int,
    seats_left              int,
    waitlist                boolean not null default true,
    registration_opens_at   timestamptz,
    registration_closes_at  timestamptz,
    url                     text,
    cancelled               boolean not null default false,
    updated_at              timestamptz not null,
    revision                bigint not null default 1,
    primary key (tenant, meeting_id)
);

create table survey_state (
    tenant      text not null,
    survey_id   uuid not null,
    title       text,
    opens_at    timestamptz,
    closes_at   timestamptz,
    closed_at   timestamptz,
    url         text,
    responses   int,
    updated_at  timestamptz not null,
    revision    bigint not null default 1,
    primary key (tenant, survey_id)
);

create table qr_codes (
    tenant            text not null,
    code              text not null primary key,
    label             text,
    target_kind       text not null check (target_kind in ('survey', 'meeting', 'page', 'url', 'app')),
    target_id         uuid,
    target_url        text not null,
    error_correction  text not null default 'M' check (error_correction in ('L', 'M', 'Q', 'H')),
    created_at        timestamptz not null,
    updated_at        timestamptz not null
);
create index qr_codes_tenant on qr_codes (tenant, created_at);

-- One counter row per code and day (Europe/Berlin): no IP address, no user agent, no cookie.
create table qr_scans (
    tenant          text not null,
    code            text not null references qr_codes (code) on delete cascade,
    day             date not null,
    scans           int not null default 0,
    -- What QrScannedV1 last reported, and when: the loop reports a row at most once a minute.
    reported_scans  int not null default 0,
    reported_at     timestamptz,
    primary key (code, day)
);
create index qr_scans_unreported on qr_scans (day) where scans > reported_scans;

-- The process page's version: every change to a process's parts raises its revision, so a conditional GET can
-- be answered from one small query (Store.page_version in store.py) instead of building the page.
create function bump_process_revision() returns trigger language plpgsql as $$
begin
    if tg_op in ('UPDATE', 'DELETE') and old.process_id is not null then
        update processes set revision = revision + 1 where id = old.process_id;
    end if;
    if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.process_id is distinct from old.process_id) then
        if new.process_id is not null then
            update processes set revision = revision + 1 where id = new.process_id;
        end if;
    end if;
    return null;
end
$$;

create function bump_own_revision() returns trigger language plpgsql as $$
begin
    new.revision := old.revision + 1;
    return new;
end
$$;

create trigger phases_revision after insert or update or delete on phases
    for each row execute function bump_process_revision();
create trigger steps_revision after insert or update or delete on steps
    for each row execute function bump_process_revision();
create trigger contacts_revision after insert or update or delete on contacts
    for each row execute function bump_process_revision();
create trigger attachments_revision after insert or update or delete on attachments
    for each row execute function bump_process_revision();
create trigger refs_revision after insert or update or delete on refs
    for each row execute function bump_process_revision();
create trigger articles_revision after insert or update or delete on articles
    for each row execute function bump_process_revision();
create trigger processes_revision before update on processes
    for each row when (old.* is distinct from new.*) execute function bump_own_revision();
create trigger meeting_state_revision before update on meeting_state
    for each row execute function bump_own_revision();
create trigger survey_state_revision before update on survey_state
    for each row execute function bump_own_revision();
