-- One profile per user, created on the user's first authenticated request.
create table public.profiles (
    id uuid primary key references auth.users (id) on delete cascade,
    email text,
    display_name text check (char_length(display_name) <= 100),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

alter table public.profiles enable row level security;

-- `(select auth.uid())` is evaluated once per statement, not once per row.
create policy profiles_select_own on public.profiles
    for select to authenticated using (id = (select auth.uid()));
create policy profiles_insert_own on public.profiles
    for insert to authenticated with check (id = (select auth.uid()));
create policy profiles_update_own on public.profiles
    for update to authenticated
    using (id = (select auth.uid())) with check (id = (select auth.uid()));

-- Supabase's default privileges grant everything on new public tables to anon and
-- authenticated; take that back and grant only what users need.
revoke all on public.profiles from anon, authenticated;
grant select, insert on public.profiles to authenticated;
grant update (display_name, updated_at) on public.profiles to authenticated;
