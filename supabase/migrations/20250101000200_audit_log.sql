-- Who changed health data, and how. The log lives in a private schema that no API role
-- can reach; a SECURITY DEFINER trigger writes it, with search_path pinned to nothing so
-- a caller cannot shadow the objects it uses.

create table private.audit_log (
  id bigint generated always as identity primary key,
  table_name text not null,
  operation text not null check (operation in ('INSERT', 'UPDATE', 'DELETE')),
  row_id text,
  actor uuid,
  actor_role text,
  at timestamptz not null default now(),
  old_data jsonb,
  new_data jsonb
);
revoke all on private.audit_log from public, anon, authenticated;

create function private.audit_trigger()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.audit_log (table_name, operation, row_id, actor, actor_role, old_data, new_data)
  values (
    tg_table_schema || '.' || tg_table_name,
    tg_op,
    coalesce(to_jsonb(new) ->> 'id', to_jsonb(old) ->> 'id'),
    auth.uid(),
    auth.role(),
    case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end,
    case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end
  );
  return coalesce(new, old);
end;
$$;
revoke execute on function private.audit_trigger() from public, anon, authenticated;

create trigger assessments_audit
  after insert or update or delete on public.assessments
  for each row execute function private.audit_trigger();
create trigger coach_interventions_audit
  after insert or update or delete on public.coach_interventions
  for each row execute function private.audit_trigger();
