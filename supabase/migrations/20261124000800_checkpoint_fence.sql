-- A run's checkpoint writes land only while it holds its thread's lease. A run stalled past
-- its lease (30 s) may find another run has taken the thread over; without this its late
-- writes would still land on the thread, beside the new run's, and fork it (or add its
-- messages to the new run's). The checkpointer calls this first, in the transaction of
-- each of a run's writes: the row lock (`for share`) holds a taking-over run back until
-- that write has committed, and once the thread is taken the write is refused with
-- SQLSTATE DC409. The service's own login only, like the other lease operations.
create function public.hold_thread_for_write(_thread uuid, _run uuid)
    returns void
    language plpgsql volatile security invoker set search_path = ''
as $$
begin
    perform from public.threads t where t.id = _thread and t.lease_run_id = _run for share;
    if not found then
        raise exception 'run % does not hold thread %', _run, _thread using errcode = 'DC409';
    end if;
end
$$;
revoke all on function public.hold_thread_for_write(uuid, uuid) from public, anon, authenticated;
