#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (/docker-entrypoint-initdb.d/).
# For each civic service: a login role civic_<service> with the password from CIVIC_<SERVICE>_DB_PASSWORD and a
# schema <service> owned by it, in the database $POSTGRES_DB. The service connects as its own role, so
# shared/db.py neither creates roles nor switches to one, and a service can read no other service's schema.
#
# Also usable against any PostgreSQL as a superuser (managed PostgreSQL included), e.g.
#   PGHOST=db.example.org POSTGRES_USER=admin POSTGRES_DB=civic CIVIC_REGISTRATION_DB_PASSWORD=... sh init.sh
# It changes nothing that already exists except the roles' passwords, so it may run again.
set -eu

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=civic}"
SERVICES="${CIVIC_DB_SERVICES:-registration surveys notifications content}"

for service in $SERVICES; do
  upper=$(printf '%s' "$service" | tr '[:lower:]' '[:upper:]')
  eval "password=\${CIVIC_${upper}_DB_PASSWORD:-}"
  if [ -z "$password" ]; then
    echo "init.sh: CIVIC_${upper}_DB_PASSWORD is not set; every service needs a password of its own" >&2
    exit 1
  fi
  psql --no-psqlrc -v ON_ERROR_STOP=1 -q \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="civic_${service}" -v schema="${service}" -v password="$password" -v db="$POSTGRES_DB" <<'SQL'
select format('create role %I login', :'role')
 where not exists (select 1 from pg_roles where rolname = :'role') \gexec
select format('alter role %I with login password %L', :'role', :'password') \gexec
select format('create schema %I authorization %I', :'schema', :'role')
 where not exists (select 1 from pg_namespace where nspname = :'schema') \gexec
select format('alter schema %I owner to %I', :'schema', :'role') \gexec
select format('grant connect, temporary on database %I to %I', :'db', :'role') \gexec
select format('alter role %I in database %I set search_path = %I', :'role', :'db', :'schema') \gexec
SQL
  echo "init.sh: role civic_${service} and schema ${service} ready in ${POSTGRES_DB}"
done

# Nobody but the owners may create objects in public or connect without a grant.
psql --no-psqlrc -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v db="$POSTGRES_DB" <<'SQL'
revoke create on schema public from public;
select format('revoke all on database %I from public', :'db') \gexec
SQL
