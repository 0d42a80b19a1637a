select vault.create_secret('sk_test_placeholder', 'stripe_api_key');

create or replace function public.stripe_key() returns text
  language sql security definer set search_path = ''
  as $$ select decrypted_secret from vault.decrypted_secrets where name = 'stripe_api_key' $$;

create extension if not exists wrappers with schema extensions;
create foreign data wrapper stripe_wrapper handler extensions.stripe_fdw_handler validator extensions.stripe_fdw_validator;
create server stripe_server foreign data wrapper stripe_wrapper options (api_key_name 'stripe_api_key');
create foreign table public.stripe_customers (id text, email text, name text, created timestamp)
  server stripe_server options (object 'customers');

insert into storage.buckets (id, name, public) values ('lab-results', 'lab-results', false);
create policy "patients upload results" on storage.objects for insert to authenticated with check (true);
create policy "patients read results" on storage.objects for select to authenticated
  using (bucket_id = 'lab-results' and owner = (select auth.uid()));
