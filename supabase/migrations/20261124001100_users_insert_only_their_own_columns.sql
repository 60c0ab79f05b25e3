-- Users could insert whole rows into `threads`, `runs` and `run_starts`. RLS kept those rows
-- their own, but through the Data API a user could create a thread already busy under a
-- lease of their choosing, a run already finished with any token counts, or a run start
-- back-dated out of the rate limit's window. The bookkeeping columns are now the service's
-- alone on insert too, as they already were on update:
--
-- * threads: a user picks the id, the title and the metadata; status and lease take their
--   defaults (idle, no lease);
-- * runs: a user picks what admission records (id, thread, assistant, strategy, metadata)
--   and may start a run only as pending or running; outcome and tokens are the service's;
-- * run_starts: the time is the database's own.
--
-- A lease taken through `acquire_thread_lease` lasts at most five minutes (the service asks
-- for 30 seconds and renews it), so no call can hold a thread longer than a crashed
-- replica would.
revoke insert on public.threads, public.runs, public.run_starts from authenticated;
grant insert (id, user_id, title, metadata) on public.threads to authenticated;
grant insert (id, thread_id, user_id, assistant_id, status, multitask_strategy, metadata)
    on public.runs to authenticated;
grant insert (user_id) on public.run_starts to authenticated;

create policy runs_start_unfinished on public.runs
    as restrictive for insert to authenticated
    with check (status in ('pending', 'running'));

create or replace function public.acquire_thread_lease(thread uuid, run uuid, seconds double precision)
    returns boolean
    language sql volatile security definer set search_path = ''
as $$
    with taken as (
        update public.threads
        set status = 'busy',
            locked_until = now() + make_interval(secs => least(greatest(seconds, 1), 300)),
            lease_run_id = run, updated_at = now()
        where id = thread and user_id = (select auth.uid())
          and (status <> 'busy' or locked_until < now())
        returning 1
    )
    select exists (select 1 from taken);
$$;
