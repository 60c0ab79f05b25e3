-- Conversations: threads owned per user, their runs, feedback on runs, and token usage.
--
-- LangGraph's checkpoints (the threads' message history) live in the `langgraph` schema,
-- created here and filled by the checkpointer's own setup at start-up. Only the service's
-- login role reads it: the Data API does not expose it, and user roles have no privilege
-- on it, so a thread's state is reachable only through its row here, under RLS.
create schema if not exists langgraph;
revoke all on schema langgraph from public, anon, authenticated;

create table public.threads (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    title text check (char_length(title) <= 200),
    status text not null default 'idle' check (status in ('idle', 'busy', 'interrupted', 'error')),
    metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    -- While a run holds the thread: which run, and until when (renewed while the run lives,
    -- so a crashed replica's lease lapses).
    locked_until timestamptz,
    lease_run_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, user_id)
);
create index threads_user_updated_idx on public.threads (user_id, updated_at desc);

create table public.runs (
    id uuid primary key,
    thread_id uuid not null,
    user_id uuid not null default auth.uid(),
    assistant_id text not null,
    status text not null default 'pending'
        check (status in ('pending', 'running', 'success', 'error', 'timeout', 'interrupted')),
    multitask_strategy text not null default 'reject',
    metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    error text,
    input_tokens integer not null default 0 check (input_tokens >= 0),
    output_tokens integer not null default 0 check (output_tokens >= 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, user_id),
    foreign key (thread_id, user_id) references public.threads (id, user_id) on delete cascade
);
create index runs_thread_created_idx on public.runs (thread_id, created_at desc);

-- When each run was admitted, for the per-minute rate limit: kept when threads (and their
-- runs) are deleted, so deleting cannot reset the limit. Pruned after a day.
create table public.run_starts (
    id bigint generated always as identity primary key,
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    started_at timestamptz not null default now()
);
create index run_starts_user_idx on public.run_starts (user_id, started_at desc);

create table public.run_feedback (
    id uuid primary key default gen_random_uuid(),
    run_id uuid not null,
    user_id uuid not null default auth.uid(),
    key text not null check (char_length(key) between 1 and 100),
    score double precision,
    comment text check (char_length(comment) <= 4000),
    created_at timestamptz not null default now(),
    foreign key (run_id, user_id) references public.runs (id, user_id) on delete cascade
);
create index run_feedback_run_idx on public.run_feedback (run_id);

-- Tokens per user per UTC day: kept when threads are deleted, so the daily budget holds.
create table public.usage_daily (
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    day date not null,
    input_tokens bigint not null default 0 check (input_tokens >= 0),
    output_tokens bigint not null default 0 check (output_tokens >= 0),
    runs integer not null default 0 check (runs >= 0),
    primary key (user_id, day)
);

alter table public.threads enable row level security;
alter table public.runs enable row level security;
alter table public.run_feedback enable row level security;
alter table public.usage_daily enable row level security;
alter table public.run_starts enable row level security;

create policy threads_own on public.threads
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy runs_own on public.runs
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy run_feedback_own on public.run_feedback
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy run_starts_own on public.run_starts
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy usage_daily_own on public.usage_daily
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- Users read all of it, create threads, runs and feedback, and rename or tag threads. The
-- bookkeeping (a thread's lease and status, a run's outcome and tokens, daily usage) is
-- written only by the service's own login, so that no user can lift their own budget or
-- lease through the Data API.
revoke all on public.threads, public.runs, public.run_feedback, public.usage_daily, public.run_starts
    from anon, authenticated;
grant select, insert, delete on public.threads to authenticated;
grant update (title, metadata, updated_at) on public.threads to authenticated;
grant select, insert on public.runs to authenticated;
grant select, insert on public.run_feedback to authenticated;
grant select on public.usage_daily to authenticated;
grant select, insert on public.run_starts to authenticated;

-- The one lease operation a user's transaction may do: take their own idle thread for a
-- run, in the same transaction that records the run. It checks ownership itself (a security
-- definer function bypasses RLS); renewing and releasing stay with the service.
create function public.acquire_thread_lease(thread uuid, run uuid, seconds double precision)
    returns boolean
    language sql volatile security definer set search_path = ''
as $$
    with taken as (
        update public.threads
        set status = 'busy', locked_until = now() + make_interval(secs => seconds),
            lease_run_id = run, updated_at = now()
        where id = thread and user_id = (select auth.uid())
          and (status <> 'busy' or locked_until < now())
        returning 1
    )
    select exists (select 1 from taken);
$$;
revoke all on function public.acquire_thread_lease(uuid, uuid, double precision) from public, anon;
grant execute on function public.acquire_thread_lease(uuid, uuid, double precision) to authenticated;
