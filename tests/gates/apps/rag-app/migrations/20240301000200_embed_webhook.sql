create schema private;

create function private.supabase_url() returns text language plpgsql security definer set search_path = ''
as $$
declare secret_value text;
begin
  select decrypted_secret into secret_value from vault.decrypted_secrets where name = 'supabase_url';
  return secret_value;
end;
$$;

create function private.embed() returns trigger language plpgsql set search_path = ''
as $$
declare
  content_column text = TG_ARGV[0];
  batch_size int = case when array_length(TG_ARGV, 1) >= 2 then TG_ARGV[1]::int else 5 end;
  batch_count int = ceiling((select count(*) from inserted) / batch_size::float);
begin
  for i in 0 .. (batch_count - 1) loop
    perform net.http_post(
      url => private.supabase_url() || '/functions/v1/embed',
      headers => jsonb_build_object('Content-Type', 'application/json',
                                    'Authorization', current_setting('request.headers')::json->>'authorization'),
      body => jsonb_build_object('ids', (select json_agg(ds.id) from (select id from inserted limit batch_size offset i * batch_size) ds),
                                 'table', TG_TABLE_NAME, 'contentColumn', content_column)
    );
  end loop;
  return null;
end;
$$;

create trigger embed_document_sections after insert on public.document_sections
  referencing new table as inserted for each statement execute procedure private.embed(content, 10);

select vault.create_secret('http://127.0.0.1:54321', 'supabase_url');
