-- A cancel for a run held by another replica is a notification, and a notification sent
-- while that replica's listener reconnects is lost. The request is now also kept in the
-- run's row: the cancel statement sets `cancel_requested_at` and notifies in one, and a
-- listener that (re)connects cancels its runs whose row asks for it. Users may set it on
-- their own runs (RLS) and on no other column: cancelling one's own run is theirs to do.
alter table public.runs add column cancel_requested_at timestamptz;
grant update (cancel_requested_at) on public.runs to authenticated;
