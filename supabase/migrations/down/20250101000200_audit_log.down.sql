drop trigger if exists coach_interventions_audit on public.coach_interventions;
drop trigger if exists assessments_audit on public.assessments;
drop function if exists private.audit_trigger();
drop table if exists private.audit_log;
