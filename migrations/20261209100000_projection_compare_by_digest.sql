-- Verification compares every live read model with a fresh build of it. Comparing by `EXCEPT`
-- both ways sorts or hashes every row of both tables twice (11.2 s of a verification at a
-- million events, against 3.0 s this way). Almost always the tables agree, so
-- each pair is first summarised by one scan of each side: its row count and the sum of a
-- 64-bit hash of each row's text. Only a table whose summaries differ is compared row by row,
-- as before, and only that comparison reports rows: a table that differs only by a repeated
-- row (which `EXCEPT` does not see) reports nothing, as it did.
--
-- The hash is seeded afresh for every call from `gen_random_uuid()`, so a changed row cannot
-- be prepared in advance to make up for the change in the sum: the seed is not known until the
-- comparison runs. The hash is not cryptographic; what makes the log tamper-evident is its
-- chain, and this comparison looks for read models that drifted from it. Two tables that
-- differ by accident agree in count and sum with a chance of about 2^-64.
--
-- The whole-row reference is named `compared_row`, which no projection table has as a column.
-- The rest of the function is unchanged (`CREATE OR REPLACE` needs all of it).
CREATE OR REPLACE FUNCTION projection_compare_tables(left_schema text, right_schema text,
    table_names text[], row_limit integer)
RETURNS TABLE (table_name text, only_in text, row_data jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    name text;
    seed bigint := ('x' || left(replace(gen_random_uuid()::text, '-', ''), 16))::bit(64)::bigint;
    left_rows bigint;
    left_sum numeric;
    right_rows bigint;
    right_sum numeric;
BEGIN
    FOREACH name IN ARRAY table_names LOOP
        EXECUTE format(
            'SELECT count(*), sum(hashtextextended(compared_row::text, $1)) '
            || 'FROM %I.%I compared_row', left_schema, name)
            INTO left_rows, left_sum USING seed;
        EXECUTE format(
            'SELECT count(*), sum(hashtextextended(compared_row::text, $1)) '
            || 'FROM %I.%I compared_row', right_schema, name)
            INTO right_rows, right_sum USING seed;
        CONTINUE WHEN left_rows = right_rows AND left_sum IS NOT DISTINCT FROM right_sum;
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, %L::text, to_jsonb(d) FROM '
            || '(SELECT * FROM %I.%I EXCEPT SELECT * FROM %I.%I) d LIMIT %s',
            name, left_schema, left_schema, name, right_schema, name, row_limit);
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, %L::text, to_jsonb(d) FROM '
            || '(SELECT * FROM %I.%I EXCEPT SELECT * FROM %I.%I) d LIMIT %s',
            name, right_schema, right_schema, name, left_schema, name, row_limit);
    END LOOP;
END;
$$;
