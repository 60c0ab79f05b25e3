-- Users may erase what they own (DELETE /me/data): their profile, as their documents already.
create policy profiles_delete_own on public.profiles
    for delete to authenticated using (id = (select auth.uid()));
grant delete on public.profiles to authenticated;
