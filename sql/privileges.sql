-- What the service's database role may do, and nothing more. `cardd migrate`
-- runs this after the numbered migrations, as the schema's owner, whenever
-- service_role is set (it sets cardd.service_role first); it is one
-- statement, idempotent, and re-applied at every migrate, so a table added
-- by a later migration gets its grants without a migration of its own.
--
-- The service role owns nothing and cannot create, alter or drop anything:
-- it reads and writes rows. The append-only tables below it may only read
-- and add to; their triggers and definitions belong to the owner, so the
-- service cannot disable or drop them either. A new append-only table is
-- added to append_only here.
DO $$
DECLARE
    svc text := current_setting('cardd.service_role');
    append_only text[] := ARRAY['audit_log', 'request_events', 'courier_events'];
    rel record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = svc) THEN
        RAISE EXCEPTION 'service role "%" does not exist (README, Security model: create it first)', svc;
    END IF;
    IF svc = current_user OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = svc
              AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication)) THEN
        RAISE EXCEPTION 'service role "%" must be a plain role, not the owner or a superuser', svc;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = svc)) THEN
        RAISE EXCEPTION 'service role "%" owns objects in the schema; it must own nothing', svc;
    END IF;

    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', svc);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', svc);
    EXECUTE format('REVOKE CREATE ON SCHEMA public FROM %I', svc);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', svc);
    FOR rel IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') LOOP
        IF rel.relkind IN ('v', 'm') OR rel.relname = 'schema_migrations' THEN
            EXECUTE format('GRANT SELECT ON %I TO %I', rel.relname, svc);
        ELSIF rel.relname = ANY (append_only) THEN
            EXECUTE format('GRANT SELECT, INSERT ON %I TO %I', rel.relname, svc);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', rel.relname, svc);
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', svc);
END $$;
