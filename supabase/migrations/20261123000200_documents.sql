-- Documents and their chunks, owned per user, searchable by vector (HNSW, cosine) and full text.
--
-- pgvector goes into the `extensions` schema, as on Supabase; where it is already installed
-- (in any schema) nothing changes. Unqualified `vector` resolves through the search path.
create schema if not exists extensions;
create extension if not exists vector with schema extensions;
grant usage on schema extensions to anon, authenticated, service_role;
set local search_path = public, extensions;

create table public.documents (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    filename text not null check (char_length(filename) between 1 and 255),
    title text not null check (char_length(title) between 1 and 500),
    content_type text not null,
    size_bytes bigint not null check (size_bytes > 0),
    content_hash text not null,
    status text not null default 'pending'
        check (status in ('pending', 'processing', 'ready', 'failed')),
    error text,
    chunk_count integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (user_id, content_hash),
    unique (id, user_id)
);

create index documents_user_created_idx on public.documents (user_id, created_at desc);
create index documents_unfinished_idx on public.documents (status) where status in ('pending', 'processing');

-- array_to_string is only STABLE (element output functions could vary); for text[] it
-- cannot, so this wrapper may be IMMUTABLE and feed the generated search column.
create function public.headings_text(headings text[]) returns text
    language sql immutable parallel safe
    return array_to_string(headings, ' ');

-- The uploaded bytes, kept so that processing interrupted by a restart can resume.
create table public.document_sources (
    document_id uuid primary key,
    user_id uuid not null default auth.uid(),
    data bytea not null,
    -- A source always belongs to a document of the same user.
    foreign key (document_id, user_id) references public.documents (id, user_id) on delete cascade
);

create table public.chunks (
    id uuid primary key default gen_random_uuid(),
    document_id uuid not null,
    user_id uuid not null default auth.uid(),
    ordinal integer not null,
    title text not null,
    heading_path text[] not null default '{}',
    content text not null,
    -- What full-text search matches: title (A), headings (B), body (D).
    search_vector tsvector not null generated always as (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', public.headings_text(heading_path)), 'B')
        || to_tsvector('english', content)
    ) stored,
    embedding vector(384),
    embedding_model text,
    created_at timestamptz not null default now(),
    unique (document_id, ordinal),
    foreign key (document_id, user_id) references public.documents (id, user_id) on delete cascade
);

create index chunks_user_idx on public.chunks (user_id);
create index chunks_model_idx on public.chunks (embedding_model);
create index chunks_embedding_idx on public.chunks using hnsw (embedding vector_cosine_ops);
create index chunks_search_idx on public.chunks using gin (search_vector);

alter table public.documents enable row level security;
alter table public.document_sources enable row level security;
alter table public.chunks enable row level security;

create policy documents_own on public.documents
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy document_sources_own on public.document_sources
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy chunks_own on public.chunks
    for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- As for profiles: no inherited default privileges, only what users need.
revoke all on public.documents, public.document_sources, public.chunks from anon, authenticated;
grant select, insert, delete on public.documents to authenticated;
grant update (title, status, error, chunk_count, updated_at) on public.documents to authenticated;
grant select, insert, delete on public.document_sources to authenticated;
grant select, insert, delete on public.chunks to authenticated;
grant update (embedding, embedding_model) on public.chunks to authenticated;
