-- The two PostgreSQL roles of a Kubernetes deployment (docs/operations.md, Kubernetes: database roles).
-- pena_owner: owns the four pena_<service> databases, used only by the release's migrate Job (Secret
--             pena-migrate): creates and alters tables, functions, triggers.
-- pena_app:   what the services connect with (Secret pena-secrets): reads and writes rows, no DDL.
-- Once, as an administrator (passwords from your secret manager):
--   CREATE ROLE pena_owner LOGIN PASSWORD '...';
--   CREATE ROLE pena_app LOGIN PASSWORD '...';
--   CREATE DATABASE pena_participants OWNER pena_owner;   -- and pena_training, pena_monev, pena_graduation
-- Then this file, as an administrator, in EACH of the four databases, before the first migrate Job:
--   psql -d pena_participants -f database-roles.sql
-- The default privileges cover every table and sequence later migrations create, so it is not rerun per
-- release. tests/deploy/test_k8s_manifests.py runs it and serves with the app role.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO pena_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pena_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO pena_app;
ALTER DEFAULT PRIVILEGES FOR ROLE pena_owner IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pena_app;
ALTER DEFAULT PRIVILEGES FOR ROLE pena_owner IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO pena_app;
