-- What a Supabase project already provides, created here only where it is missing, so
-- the same migrations run unchanged on Supabase (where this file changes nothing) and on
-- plain PostgreSQL with pgvector (the embedded database, CI, docker-compose).
--
-- On plain PostgreSQL the migrating login must be a superuser (or these roles must exist):
-- service_role is created with BYPASSRLS, as on Supabase.

do $compat$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    -- The service's login switches into `authenticated` per request (set_config('role', ...)).
    if not pg_has_role(current_user, 'authenticated', 'MEMBER') then
        execute format('grant authenticated to %I', current_user);
    end if;

    if not exists (select from pg_namespace where nspname = 'auth') then
        create schema auth;
        grant usage on schema auth to anon, authenticated, service_role;
    end if;

    if to_regclass('auth.users') is null then
        create table auth.users (
            id uuid primary key default gen_random_uuid(),
            email text,
            aud varchar(255),
            role varchar(255),
            raw_app_meta_data jsonb,
            raw_user_meta_data jsonb,
            is_anonymous boolean not null default false,
            created_at timestamptz default now(),
            updated_at timestamptz default now()
        );
        create unique index users_email_key on auth.users (email);
    end if;

    -- Same definitions as Supabase's: claims come from the transaction-local setting.
    if to_regprocedure('auth.jwt()') is null then
        create function auth.jwt() returns jsonb language sql stable as $fn$
            select coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $fn$;
    end if;
    if to_regprocedure('auth.uid()') is null then
        create function auth.uid() returns uuid language sql stable as $fn$
            select coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
            )::uuid
        $fn$;
    end if;
end
$compat$;
