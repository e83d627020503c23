-- The application's runtime role: it may read and write the data, but only INSERT and SELECT
-- the audit trail (and the signed MDT addenda), on top of the triggers that refuse UPDATE/DELETE.
-- The schema owner (role `qcflow`, which runs `db upgrade`) keeps every right; the web workers and
-- the scheduler connect as `qcflow_app`. Run as postgres after `db upgrade`, and again after every
-- upgrade (it is idempotent and re-applies the audit restriction to what the upgrade created):
--
--   runuser -u postgres -- psql -v ON_ERROR_STOP=1 -v app_password="$APPPASS" -d qcflow \
--       -f /opt/qcflow/deploy/postgresql/app-role.sql
--
-- Variables (psql -v): app_password (required), app_role (qcflow_app), owner (qcflow),
-- dbname (qcflow). tests/security/test_deploy.py runs this file against the test database.
-- See docs/deploy.md §2.

\if :{?app_role} \else \set app_role qcflow_app \endif
\if :{?owner} \else \set owner qcflow \endif
\if :{?dbname} \else \set dbname qcflow \endif

SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_role', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec

GRANT CONNECT ON DATABASE :"dbname" TO :"app_role";
GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app_role";

-- Append-only tables: the application inserts and reads, never changes or removes.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entry FROM :"app_role";
REVOKE UPDATE, DELETE, TRUNCATE ON audit_anonymous_entry FROM :"app_role";
REVOKE UPDATE, DELETE, TRUNCATE ON mdt_addendum FROM :"app_role";
