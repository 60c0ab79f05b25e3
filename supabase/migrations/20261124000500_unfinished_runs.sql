-- Every replica looks for runs that no process will finish every 10 seconds (their thread's
-- lease has lapsed, or a later run took the thread over), and frees threads whose lease has
-- lapsed: partial indexes over just those rows keep both looks cheap however many runs and
-- threads there are.
create index runs_unfinished_idx on public.runs (thread_id) where status in ('pending', 'running');
create index threads_busy_idx on public.threads (locked_until) where status = 'busy';
