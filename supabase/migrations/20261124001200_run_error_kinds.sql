-- A failed run's kind (`model_timeout`, `lease_lost`, `run_orphaned`, ...) beside its message.
-- The process that ran a run told its clients the kind; a `join` or `cancel?wait=1` answered
-- by another replica, or after the run was forgotten, could only give the run's status
-- ("error", "timeout"), so a client behind a load balancer saw two codes for one failure.
alter table public.runs add column error_kind text;

-- `finish_run` (migration 000600) with the kind too; otherwise unchanged. The 7-argument one
-- stays for the previous release's pods, which still call it during a rolling deploy (the
-- migration runs before they are replaced); drop it in a later release.
create function public.finish_run(
    _run uuid, _status text, _error_kind text, _error text, _input_tokens integer, _output_tokens integer,
    _day date, _thread_status text)
    returns boolean
    language plpgsql volatile security invoker set search_path = ''
as $$
declare
    _user uuid;
    _thread uuid;
begin
    update public.runs r
    set status = _status, error_kind = _error_kind, error = _error, input_tokens = _input_tokens,
        output_tokens = _output_tokens, updated_at = now()
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
revoke all on function public.finish_run(uuid, text, text, text, integer, integer, date, text)
    from public, anon, authenticated;
