#!/usr/bin/env bash
# Subsets after a full conversion (issue 17): every shape converted by batches (a journal of many
# chunks), then subsets with scattered ids reversed from it, by ROIs in one statement, by ROIs too
# many for one statement (by batches), and by shape ids cancelled mid-way and resumed: each
# subset gets back exactly its original colours, every other shape stays converted once.
set -uo pipefail
source "$(dirname "$0")/../lib/tap.sh"

db=colors_subset
fixture_db "$db"
q "$db" -c "CREATE EXTENSION omero_upgrade" >/dev/null
# More shapes (copies of the fixture's under ids spread far apart, in the same ROIs), so that the
# full conversion journals many chunks and a subset's ids are scattered over all of them.
q "$db" -c "INSERT INTO shape SELECT discriminator, id + 100000 * k, permissions, fillcolor, fillrule, fontfamily,
              fontsizeunit, fontsize, fontstyle, locked, strokecolor, strokedasharray, strokewidthunit, strokewidth,
              thec, thet, thez, version, radiusx, radiusy, textvalue, x, y, markerend, markerstart, x1, x2, y1, y2,
              bytes, height, width, d, points, creation_id, NULL, group_id, owner_id, update_id, roi, transform,
              pixels, roi_index + 1000 * k
            FROM shape, generate_series(1, 5) k" >/dev/null
q "$db" -c "CREATE TABLE saved AS SELECT id, roi, fillcolor, strokecolor FROM shape" >/dev/null
total=$(q "$db" -c "SELECT count(*) FROM shape")
diag "$total shapes"

q "$db" -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch')" >/dev/null 2>&1
ok $? "full conversion by batches"
chunks=$(q "$db" -c "SELECT count(*) FROM omero_upgrade.color_journal")
ok $(( chunks >= 30 ? 0 : 1 )) "the journal holds many chunks ($chunks)"

# Per shape: 'orig' (its saved colours), 'conv' (the formula applied once to them) or 'other'.
# Prints "<subset: orig conv other> <rest: orig conv other>" for the shapes matched by $1.
state() {
  q "$db" -c "
    WITH t AS (SELECT v.id, ($1) AS sub,
                      CASE WHEN s.fillcolor IS NOT DISTINCT FROM v.fillcolor AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor
                             AND s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                             AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor) THEN 'both'
                           WHEN s.fillcolor IS NOT DISTINCT FROM v.fillcolor AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor THEN 'orig'
                           WHEN s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                             AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor) THEN 'conv'
                           ELSE 'other' END AS st
                 FROM shape s JOIN saved v USING (id))
    SELECT count(*) FILTER (WHERE sub AND st IN ('orig', 'both')), count(*) FILTER (WHERE sub AND st = 'conv'),
           count(*) FILTER (WHERE sub AND st = 'other'),
           count(*) FILTER (WHERE NOT sub AND st = 'orig'), count(*) FILTER (WHERE NOT sub AND st IN ('conv', 'both')),
           count(*) FILTER (WHERE NOT sub AND st = 'other')
      FROM t" | tr '|' ' '
}
# Shapes whose colours the formula leaves as they are (NULL, or fixed points): 'both' above.
count_of() { q "$db" -c "SELECT count(*) FROM saved v WHERE $1"; }

# 1. ROIs % 7 = 3: scattered ids, fewer shapes than a batch: one statement.
sub1="v.roi % 7 = 3"
n1=$(count_of "roi % 7 = 3")
rest1=$(( total - n1 ))
out=$(q "$db" -c "DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM roi WHERE id % 7 = 3);
                   BEGIN CALL omero_colors_convert('rgba_to_argb', roi_ids => ids); END \$\$" 2>&1)
ok $? "ROI subset reversed in one statement"
like "$out" "$n1 shapes selected, 0 converted, $n1 restored from the journal" "all $n1 shapes restored from the journal"
is "$(state "$sub1")" "$n1 0 0 0 $rest1 0" "ROI subset: its exact originals back, every other shape still converted"

# 2. ROIs % 7 = 5 with a batch smaller than the subset: the one statement gives way to batches.
sub2="v.roi % 7 IN (3, 5)"
n2=$(count_of "roi % 7 IN (3, 5)")
out=$(q "$db" -c "DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM roi WHERE id % 7 = 5);
                   BEGIN CALL omero_colors_convert('rgba_to_argb', roi_ids => ids, batch_size => 50); END \$\$" 2>&1)
ok $? "a bigger ROI subset reversed by batches"
like "$out" "$(( n2 - n1 )) shapes selected, 0 converted, $(( n2 - n1 )) restored from the journal" \
  "all of its shapes restored from the journal"
is "$(state "$sub2")" "$n2 0 0 0 $(( total - n2 )) 0" "both ROI subsets back to their originals, the rest converted"
is "$(q "$db" -c "SELECT count(*) FROM omero_upgrade.color_runs WHERE finished_at IS NULL")" 0 "every run finished"

# 3. Shape ids with id % 11 = 4, by small batches, slowed down and cancelled mid-way, resumed.
sub3="v.roi % 7 IN (3, 5) OR v.id % 11 = 4"
n3=$(count_of "roi % 7 IN (3, 5) OR id % 11 = 4")
q "$db" -c "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
              BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END \$\$;
            CREATE TRIGGER slow AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION slow()" >/dev/null
restored() { q "$db" -c "SELECT coalesce(sum(cardinality(shape_ids)), 0) FROM omero_upgrade.color_journal WHERE kind = 'restore'"; }
before=$(restored)
call="DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM shape WHERE id % 11 = 4 AND roi % 7 NOT IN (3, 5));
       BEGIN CALL omero_colors_convert('rgba_to_argb', shape_ids => ids, batch_size => 40); END \$\$"
psql -X -q -d "$db" -c "$call" >"$OU_TMP/colors-subset-cancel.out" 2>&1 &
bg=$!
for _ in $(seq 300); do [ "$(restored)" -ge $(( before + 200 )) ] && break; sleep 0.1; done
q postgres -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                WHERE query LIKE 'DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM shape WHERE id % 11%'
                  AND pid <> pg_backend_pid()" >/dev/null
wait $bg
ok $(( $? == 0 )) "the cancelled CALL failed"
like "$(cat "$OU_TMP/colors-subset-cancel.out")" "canceling statement due to user request" "it was cancelled"
done_now=$(( $(restored) - before ))
n3only=$(( n3 - n2 ))
diag "cancelled after restoring $done_now of $n3only"
ok $(( done_now > 0 && done_now < n3only ? 0 : 1 )) "part of the shape subset restored at the cancel ($done_now of $n3only)"
read -r s_orig s_conv s_other r_orig r_conv r_other <<<"$(state "$sub3")"
is "$(( s_orig + s_conv )) $s_other $r_orig $r_other" "$n3 0 0 0" "after the cancel: every shape original or converted once"
is "$(q "$db" -c "
    WITH r AS (SELECT DISTINCT id FROM omero_upgrade.color_journal c, unnest(c.shape_ids) id WHERE c.kind = 'restore')
    SELECT count(*) FROM shape s JOIN saved v USING (id) LEFT JOIN r USING (id)
     WHERE NOT (v.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                AND v.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor))
       AND (r.id IS NOT NULL) <> (s.fillcolor IS NOT DISTINCT FROM v.fillcolor AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor)")" \
  0 "after the cancel: exactly the journaled restores have their originals"
q "$db" -c "$call" >/dev/null 2>&1
ok $? "the resumed run finishes"
is "$(state "$sub3")" "$n3 0 0 0 $(( total - n3 )) 0" "resumed: the whole subset back to its originals, the rest converted"
is "$(q "$db" -c "SELECT interrupted_runs FROM omero_colors_status() WHERE direction = 'rgba_to_argb'")" 0 \
  "the interrupted run was taken over"
q "$db" -c "DROP TRIGGER slow ON shape" >/dev/null
# A shape whose journal entry the lookup missed would be converted by the formula instead (which
# gives back the originals but for an alpha of 0): every reverse so far restored, none converted.
is "$(q "$db" -c "SELECT sum(converted), sum(restored) FROM omero_upgrade.color_runs WHERE direction = 'rgba_to_argb'")" \
  "0|$n3" "every shape of the subsets restored from the journal, none converted by the formula"

# 4. The rest reversed too: every shape back to its exact original colours; converting again and
# reversing a subset once more still exact (the journal's newest entry per shape decides).
q "$db" -c "CALL omero_colors_convert('rgba_to_argb')" >/dev/null 2>&1
ok $? "the rest reversed"
is "$(state "true")" "$total 0 0 0 0 0" "every shape has its exact original colours"
is "$(q "$db" -c "SELECT sum(converted), sum(restored) FROM omero_upgrade.color_runs WHERE direction = 'rgba_to_argb'")" \
  "0|$total" "every shape restored from the journal, none converted by the formula"
q "$db" -c "DO \$\$ DECLARE ids int8[] := (SELECT array_agg(id) FROM roi WHERE id % 7 = 3);
             BEGIN CALL omero_colors_convert('argb_to_rgba', roi_ids => ids); END \$\$" >/dev/null 2>&1
is "$(state "NOT ($sub1)")" "$(( total - n1 )) 0 0 0 $n1 0" "the ROI subset converted again, alone"

q postgres -c "DROP DATABASE $db" >/dev/null
done_testing
