-- Docent needs no seed data: users come from Supabase Auth (or `docent token` locally)
-- and each profile is created on its user's first authenticated request.
-- `supabase db reset` runs this file after the migrations; `docent migrate` does not.
select 1;
