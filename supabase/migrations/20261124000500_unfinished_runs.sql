-- Every replica looks for unfinished runs whose thread's lease has lapsed (their process
-- died) every 30 seconds: an index over just those runs keeps that look cheap however many
-- runs have finished.
create index runs_unfinished_idx on public.runs (thread_id) where status in ('pending', 'running');
