-- A thread's checkpoints (LangGraph's tables, keyed by the thread id as text, with no
-- foreign key) go with the thread, in the same transaction, however the thread goes:
-- DELETE /threads/{id}, DELETE /me/data, or the account's deletion in Supabase Auth
-- (auth.users cascades to public.threads). Until now only the routes deleted them, so a
-- deleted account's conversations stayed stored, and a run with `if_not_exists: create`
-- on such a thread's id showed them to whoever made it anew.
--
-- The checkpointer creates its tables as the service starts, after migrations: the trigger
-- does nothing while they do not exist. Security definer: `authenticated`, which deletes
-- its own threads, has no rights in the `langgraph` schema.
create function public.delete_thread_checkpoints()
    returns trigger
    language plpgsql volatile security definer set search_path = ''
as $$
begin
    if to_regclass('langgraph.checkpoints') is not null then
        delete from langgraph.checkpoint_writes w using gone where w.thread_id = gone.id::text;
        delete from langgraph.checkpoint_blobs b using gone where b.thread_id = gone.id::text;
        delete from langgraph.checkpoints c using gone where c.thread_id = gone.id::text;
    end if;
    return null;
end
$$;
revoke all on function public.delete_thread_checkpoints() from public, anon, authenticated;

create trigger threads_delete_checkpoints
    after delete on public.threads
    referencing old table as gone
    for each statement execute function public.delete_thread_checkpoints();

-- What earlier deletions left behind.
do $$
begin
    if to_regclass('langgraph.checkpoints') is not null then
        delete from langgraph.checkpoint_writes w
            where not exists (select from public.threads t where t.id::text = w.thread_id);
        delete from langgraph.checkpoint_blobs b
            where not exists (select from public.threads t where t.id::text = b.thread_id);
        delete from langgraph.checkpoints c
            where not exists (select from public.threads t where t.id::text = c.thread_id);
    end if;
end
$$;
