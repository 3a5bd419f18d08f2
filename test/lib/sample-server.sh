# Sample OMERO.server pieces for tests and the demo (sourced). Our own writing, following the
# conventions of the official scripts (omero-facts.md): version check, prerequisite checks,
# dbpatch insert, schema change, `finished` set, the success line; prechecks in BEGIN … ROLLBACK.
#
#   make_sample_sql DIR [FAIL_HOP]   writes DIR/sql/psql/<to>/<from>.sql (+ -precheck.sql) for
#                                    every hop of the facts; FAIL_HOP "FROM:TO" makes that hop's
#                                    script fail half-way (after its dbpatch insert).

_sample_hops="OMERO5.2__0:OMERO5.3__0 OMERO5.2__0:OMERO5.3__1 OMERO5.3__0:OMERO5.3__1 OMERO5.3__0:OMERO5.4__0 OMERO5.3__1:OMERO5.4__0"
_sample_prechecks="OMERO5.2__0:OMERO5.3__0 OMERO5.2__0:OMERO5.3__1 OMERO5.3__0:OMERO5.4__0 OMERO5.3__1:OMERO5.4__0"

_sample_checks() {  # $1 from-version $2 from-patch: the checks both kinds of script start with
  cat <<SQL
CREATE FUNCTION pg_temp.sample_check_version() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE v varchar; p int;
BEGIN
    SELECT currentversion, currentpatch INTO STRICT v, p FROM dbpatch ORDER BY id DESC LIMIT 1;
    IF v <> '$1' OR p <> $2 THEN
        RAISE EXCEPTION 'wrong OMERO database version for this upgrade script';
    END IF;
END \$\$;
SELECT pg_temp.sample_check_version();

CREATE FUNCTION pg_temp.sample_check_server() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE n int := current_setting('server_version_num')::int; e text;
BEGIN
    SELECT pg_encoding_to_char(encoding) INTO STRICT e FROM pg_database WHERE datname = current_database();
    IF n < 90300 THEN
        RAISE EXCEPTION 'PostgreSQL database server version % is less than OMERO prerequisite 9.3.0', n;
    END IF;
    IF e <> 'UTF8' THEN
        RAISE EXCEPTION 'OMERO database character encoding must be UTF8, not %', e;
    END IF;
END \$\$;
SELECT pg_temp.sample_check_server();
SQL
}

make_sample_sql() {
  local dir=$1 fail=${2:-} hop from to fv fp tv tp f
  for hop in $_sample_hops; do
    from=${hop%%:*} to=${hop##*:}
    fv=${from%__*} fp=${from##*__} tv=${to%__*} tp=${to##*__}
    mkdir -p "$dir/sql/psql/$to"
    f=$dir/sql/psql/$to/$from.sql
    {
      echo "-- Sample upgrade script $from -> $to, written for omero_upgrade's tests (not OMERO's)."
      echo "BEGIN;"
      _sample_checks "$fv" "$fp"
      echo "INSERT INTO dbpatch (id, currentversion, currentpatch, previousversion, previouspatch)"
      echo "    VALUES (ome_nextval('seq_dbpatch'), '$tv', $tp, '$fv', $fp);"
      echo "-- schema changes of the kind real scripts make, on tables the extension reads"
      echo "ALTER TABLE shape ALTER COLUMN fillcolor TYPE int4, ALTER COLUMN strokecolor TYPE int4;"
      echo "ALTER TABLE annotation ALTER COLUMN ns TYPE text;"
      echo "CREATE INDEX sample_${tv//./_}_${tp}_from_${fv//./_}_${fp} ON annotation (discriminator);"
      if [ "$hop" = "$fail" ]; then
        echo "-- injected failure, half-way through"
        echo "SELECT 1 / 0 AS injected_failure;"
      fi
      echo "UPDATE dbpatch SET message = 'Database updated.', finished = clock_timestamp()"
      echo " WHERE currentversion = '$tv' AND currentpatch = $tp AND previousversion = '$fv' AND previouspatch = $fp;"
      echo "SELECT E'\\n\\n\\nYOU HAVE SUCCESSFULLY UPGRADED YOUR DATABASE TO VERSION $to\\n\\n\\n' AS Status;"
      echo "COMMIT;"
    } > "$f"
  done
  for hop in $_sample_prechecks; do
    from=${hop%%:*} to=${hop##*:}
    fv=${from%__*} fp=${from##*__}
    f=$dir/sql/psql/$to/$from-precheck.sql
    {
      echo "-- Sample precheck $from -> $to, written for omero_upgrade's tests (not OMERO's)."
      echo "BEGIN;"
      _sample_checks "$fv" "$fp"
      echo "SELECT E'\\n\\n\\nYOUR DATABASE IS READY FOR UPGRADE TO VERSION $to\\n\\n\\n' AS Status;"
      echo "ROLLBACK;"
    } > "$f"
  done
}
