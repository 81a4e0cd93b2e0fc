-- Faster builds of read models into a schema of their own (ledger-projections' rebuilds and
-- point-in-time builds). Nobody reads such a schema until the build is finished, so its tables
-- are built UNLOGGED and without their secondary indexes, then made durable (SET LOGGED writes
-- each table to the WAL once, instead of every row version of every batch) and indexed in bulk.
-- Primary keys stay throughout: the upserts' ON CONFLICT needs them.

-- Drops every index but the primary key of the named tables in `target_schema`, and makes
-- them UNLOGGED.
CREATE FUNCTION projection_prepare_build(target_schema text, table_names text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    table_name text;
    index_name text;
BEGIN
    FOREACH table_name IN ARRAY table_names LOOP
        IF table_name NOT LIKE 'projection\_%' THEN
            RAISE EXCEPTION 'not a projection table: %', table_name;
        END IF;
        FOR index_name IN
            SELECT i.relname FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = target_schema AND t.relname = table_name AND NOT x.indisprimary
        LOOP
            EXECUTE format('DROP INDEX %I.%I', target_schema, index_name);
        END LOOP;
        EXECUTE format('ALTER TABLE %I.%I SET UNLOGGED', target_schema, table_name);
    END LOOP;
END;
$$;

-- Makes the named tables of `target_schema` LOGGED again and creates the secondary indexes
-- their live templates in `public` have.
CREATE FUNCTION projection_finish_build(target_schema text, table_names text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    table_name text;
    definition text;
BEGIN
    FOREACH table_name IN ARRAY table_names LOOP
        IF table_name NOT LIKE 'projection\_%' THEN
            RAISE EXCEPTION 'not a projection table: %', table_name;
        END IF;
        EXECUTE format('ALTER TABLE %I.%I SET LOGGED', target_schema, table_name);
        FOR definition IN
            SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND t.relname = table_name AND NOT x.indisprimary
        LOOP
            -- "CREATE INDEX name ON public.table USING …": the same index on the build's table.
            EXECUTE replace(definition, ' ON public.', format(' ON %I.', target_schema));
        END LOOP;
    END LOOP;
END;
$$;
