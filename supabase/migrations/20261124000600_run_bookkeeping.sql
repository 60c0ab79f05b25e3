-- A run's admission and its end, each one statement (they were seven, at about a
-- millisecond a statement of every turn's time).

-- Admission, in the caller's user transaction and under their RLS (security invoker): the
-- thread must be theirs, it is taken for the run unless the run waits its turn in this
-- process (`queued`), its first question names it, and the run is recorded. The outcome is
-- 'admitted', 'not_found' or 'busy'; only an admitted run has written anything.
create function public.admit_run(
    _thread uuid, _run uuid, _assistant text, _strategy text, _metadata jsonb, _title text,
    _lease_seconds double precision, _queued boolean,
    out outcome text, out created_at timestamptz)
    language plpgsql volatile security invoker set search_path = ''
as $$
begin
    perform from public.threads t where t.id = _thread;
    if not found then
        outcome := 'not_found';
        return;
    end if;
    if not _queued and not public.acquire_thread_lease(_thread, _run, _lease_seconds) then
        outcome := 'busy';
        return;
    end if;
    update public.threads t set title = _title, updated_at = now() where t.id = _thread and t.title is null;
    insert into public.runs as r (id, thread_id, assistant_id, status, multitask_strategy, metadata)
    values (_run, _thread, _assistant, case when _queued then 'pending' else 'running' end, _strategy, _metadata)
    returning r.created_at into admit_run.created_at;
    outcome := 'admitted';
end
$$;
revoke all on function public.admit_run(uuid, uuid, text, text, jsonb, text, double precision, boolean)
    from public, anon;
grant execute on function public.admit_run(uuid, uuid, text, text, jsonb, text, double precision, boolean)
    to authenticated;

-- A run's end, by the service's own login (users may not write outcomes, usage or leases):
-- its outcome and tokens, the tokens added to the owner's day, and its thread released if
-- `_thread_status` is given (the run held the lease; never another run's). False, and
-- nothing written, when the end was recorded already (by an attempt whose commit went
-- through, or by the sweep of orphaned runs): tokens are never counted twice.
create function public.finish_run(
    _run uuid, _status text, _error text, _input_tokens integer, _output_tokens integer, _day date,
    _thread_status text)
    returns boolean
    language plpgsql volatile security invoker set search_path = ''
as $$
declare
    _user uuid;
    _thread uuid;
begin
    update public.runs r
    set status = _status, error = _error, input_tokens = _input_tokens, output_tokens = _output_tokens,
        updated_at = now()
    where r.id = _run and r.status in ('pending', 'running')
    returning r.user_id, r.thread_id into _user, _thread;
    if not found then
        return false;
    end if;
    insert into public.usage_daily as u (user_id, day, input_tokens, output_tokens, runs)
    values (_user, _day, _input_tokens, _output_tokens, 1)
    on conflict (user_id, day) do update
    set input_tokens = u.input_tokens + excluded.input_tokens,
        output_tokens = u.output_tokens + excluded.output_tokens,
        runs = u.runs + 1;
    if _thread_status is not null then
        update public.threads t
        set status = _thread_status, locked_until = null, lease_run_id = null, updated_at = now()
        where t.id = _thread and t.lease_run_id = _run;
    end if;
    return true;
end
$$;
revoke all on function public.finish_run(uuid, text, text, integer, integer, date, text)
    from public, anon, authenticated;
