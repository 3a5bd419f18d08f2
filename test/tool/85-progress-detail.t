#!/usr/bin/env bash
# The extension's progress NOTICEs (README, "Design", "Progress"): a psql user sees the message
# alone, never the machine-readable JSON DETAIL; the tool, which sets omero_upgrade.progress_detail
# on each of its connections (whatever application_name a -d conninfo gives), gets the DETAIL and
# shows its own progress lines on stderr, nothing of them on stdout. A statement trigger on shape
# makes each batch of a conversion take 0.5 s, so that a run lasts long enough to report progress.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_pd LOGIN" postgres
fixture_db pd_db --version OMERO5.4__0 --owner omero_pd
psql -X -q -U omero_pd -d pd_db -c "CREATE EXTENSION omero_upgrade"
q pd_db -c "CREATE FUNCTION public.slow_batch() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END\$\$;
            CREATE TRIGGER slow_batch AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION public.slow_batch()"
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 pd_db omero_pd
ou() { "$TOOL" --server-dir "$srv" "$@"; }
n=$(q pd_db -c "SELECT count(*) FROM shape")
call() { echo "CALL omero_colors_convert('$1', batch_size => 200, method => 'batch');"; }

# ---- psql -------------------------------------------------------------------------------------------
psql -X -d pd_db -U omero_pd -c "$(call argb_to_rgba)" >"$t/out" 2>"$t/err"; rc=$?
is "$rc" 0 "psql: CALL omero_colors_convert, 10 batches of 0.5 s"
like "$(cat "$t/err")" "NOTICE:  omero_upgrade progress: colors argb_to_rgba: [0-9]+/$n shapes \([0-9.]+%\)" \
  "… the progress NOTICE's message is shown"
unlike "$(cat "$t/err")" 'DETAIL:  \{"task"' "… its JSON DETAIL is not"
PGOPTIONS="-c omero_upgrade.progress_detail=on" psql -X -d pd_db -U omero_pd -c "$(call rgba_to_argb)" >"$t/out" 2>"$t/err"
like "$(cat "$t/err")" 'DETAIL:  \{"task": "colors rgba_to_argb", "done": [0-9]+, "total": '"$n"',' \
  "… with omero_upgrade.progress_detail on (as the tool sets it) the DETAIL comes"
is "$(q pd_db -c 'DO $$BEGIN PERFORM omero_argb_to_rgba(0); END$$' -c "SHOW omero_upgrade.progress_detail")" "off" \
  "the setting (defined by the extension's library) is off by default"

# ---- the tool -------------------------------------------------------------------------------------
ou colors convert --batches --batch-size 200 >"$t/out" 2>"$t/err"; rc=$?
is "$rc" 0 "colors convert --batches (10 batches of 0.5 s)"
like "$(cat "$t/err")" "(^|"$'\n'")colors argb_to_rgba: [0-9]+/$n shapes \([0-9.]+%\), [0-9.]+ shapes/s, elapsed [0-9:]+, ETA" \
  "… the tool shows the extension's progress as its own lines on stderr (from the DETAIL)"
unlike "$(cat "$t/out")" "omero_upgrade progress|shapes/s|ETA" "… nothing of it on stdout"
like "$(cat "$t/out")" "done: argb_to_rgba: $n shape\(s\) selected: $n converted" "… stdout: the result"

# A conninfo with an application_name of its own: the tool still gets its progress.
ou -d "dbname=pd_db application_name=somebody-else" colors revert --batches --batch-size 200 >"$t/out" 2>"$t/err"; rc=$?
is "$rc" 0 "colors revert -d 'dbname=… application_name=somebody-else'"
like "$(cat "$t/err")" "(^|"$'\n'")colors rgba_to_argb: [0-9]+/$n shapes \([0-9.]+%\)" "… progress lines still on stderr"
unlike "$(cat "$t/out")" "omero_upgrade progress|shapes/s" "… none on stdout"

done_testing
