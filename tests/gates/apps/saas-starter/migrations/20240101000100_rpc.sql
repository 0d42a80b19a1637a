create or replace function public.get_accounts() returns json language sql security definer set search_path = ''
as $$
  select coalesce(json_agg(json_build_object('account_id', wu.account_id, 'account_role', wu.account_role,
                                             'name', a.name, 'slug', a.slug)), '[]'::json)
  from public.account_user wu join public.accounts a on a.id = wu.account_id
  where wu.user_id = (select auth.uid());
$$;
revoke execute on function public.get_accounts() from public, anon;
grant execute on function public.get_accounts() to authenticated;

create or replace function public.current_user_account_role(account_id uuid) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare response jsonb;
begin
  select jsonb_build_object('account_role', wu.account_role,
                            'is_primary_owner', a.primary_owner_user_id = (select auth.uid()))
  into response
  from public.account_user wu join public.accounts a on a.id = wu.account_id
  where wu.user_id = (select auth.uid()) and wu.account_id = current_user_account_role.account_id;
  return response;
end;
$$;
revoke execute on function public.current_user_account_role(uuid) from public, anon;
grant execute on function public.current_user_account_role(uuid) to authenticated;
