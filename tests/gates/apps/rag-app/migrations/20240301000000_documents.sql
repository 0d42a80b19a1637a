create extension if not exists vector with schema extensions;

create table public.documents (
  id bigint primary key generated always as identity,
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null,
  storage_object_id uuid references storage.objects (id),
  created_at timestamptz not null default now()
);
create table public.document_sections (
  id bigint primary key generated always as identity,
  document_id bigint not null references public.documents (id) on delete cascade,
  content text not null,
  embedding extensions.vector(384)
);
create index document_sections_embedding_idx on public.document_sections
  using hnsw (embedding extensions.vector_ip_ops);

alter table public.documents enable row level security;
alter table public.document_sections enable row level security;

create policy "Users can insert documents" on public.documents for insert to authenticated
  with check ((select auth.uid()) = owner_id);
create policy "Users can query their own documents" on public.documents for select to authenticated
  using ((select auth.uid()) = owner_id);
create policy "Users can query their own document sections" on public.document_sections for select to authenticated
  using (document_id in (select id from public.documents where owner_id = (select auth.uid())));
create policy "Users can insert document sections" on public.document_sections for insert to authenticated
  with check (document_id in (select id from public.documents where owner_id = (select auth.uid())));
