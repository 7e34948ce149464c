-- A read-only role for Grafana's PostgreSQL data source. Run once by the postgres image's
-- first start (initdb/10-grafana-reader.sh) as the application user, before the services
-- create their tables: the default privileges then cover every read-model table the
-- migrations add later. psql variable: reader_password.
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
-- Dashboards must never slow down the processor's commits.
ALTER ROLE grafana_reader SET statement_timeout = '10s';
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
