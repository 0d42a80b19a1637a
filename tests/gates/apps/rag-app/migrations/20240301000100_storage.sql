insert into storage.buckets (id, name, public) values ('files', 'files', false);

create policy "Authenticated users can upload files" on storage.objects for insert to authenticated
  with check (bucket_id = 'files' and owner = (select auth.uid()) and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy "Users can view their own files" on storage.objects for select to authenticated
  using (bucket_id = 'files' and owner = (select auth.uid()));
create policy "Users can delete their own files" on storage.objects for delete to authenticated
  using (bucket_id = 'files' and owner = (select auth.uid()));
