#!/usr/bin/env bash
# annotations move-to-wells: the tool's wrapper over omero_annotations_move_to_wells on a fixture
# database. A dry run changes nothing and announces what --apply then creates (checked against an
# independent SQL oracle); a second --apply creates nothing; --remove-image-links; ids inline and
# from files; bad ids and kinds exit 2 with the extension's message; the --json shape.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_mw LOGIN" postgres
fixture_db mw_db --version OMERO5.4__0 --owner omero_mw
psql -X -q -U omero_mw -d mw_db -c "CREATE EXTENSION omero_upgrade"
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 mw_db omero_mw
ou() { "$TOOL" --server-dir "$srv" "$@"; }
mw() { ou annotations move-to-wells "$@"; }

# Every row of the tables a move writes, to see that a dry run changes nothing.
links_sum() {
  q mw_db -c "SELECT md5(concat((SELECT string_agg(l::text, ',' ORDER BY id) FROM wellannotationlink l),
                                (SELECT string_agg(l::text, ',' ORDER BY id) FROM imageannotationlink l),
                                (SELECT count(*) FROM eventlog), (SELECT count(*) FROM event)))"
}
n_wl() { q mw_db -c "SELECT count(*) FROM wellannotationlink"; }
n_il() { q mw_db -c "SELECT count(*) FROM imageannotationlink"; }
# The oracle: the (well, annotation, owner) triples of image links on the wells' images (WHERE on
# well w) that the well does not have yet: what a move must create.
missing() {
  q mw_db -c "SELECT DISTINCT ws.well, il.child, il.owner_id
                FROM wellsample ws JOIN well w ON w.id = ws.well
                JOIN imageannotationlink il ON il.parent = ws.image
                JOIN annotation a ON a.id = il.child
               WHERE $1 AND NOT EXISTS (SELECT 1 FROM wellannotationlink wl
                      WHERE wl.parent = ws.well AND wl.child = il.child AND wl.owner_id = il.owner_id)
               ORDER BY 1, 2, 3"
}
# Well links of the given wells, as (well, annotation, owner) triples.
well_links() { q mw_db -c "SELECT wl.parent, wl.child, wl.owner_id FROM wellannotationlink wl JOIN well w ON w.id = wl.parent WHERE $1 ORDER BY 1, 2, 3"; }
count() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }

sum0=$(links_sum)
want2=$(missing "w.plate = 2")
n_want2=$(count "$want2")
ok "$([ "$n_want2" -gt 8 ]; echo $?)" "the fixture has links to move on plate 2 ($n_want2)"

# ---- dry run -----------------------------------------------------------------------------------------
out=$(mw --plate 2 2>&1); rc=$?
is "$rc" 0 "dry run --plate 2: exit 0"
like "$out" "DRY RUN: nothing was changed; give --apply" "… says loudly that it is a dry run"
like "$out" "plate +wells +without samples +image links +links to create +already on well +image links to remove" "… a table header"
like "$out" "
 +2 +24 +1 +[0-9]+ +$n_want2 +[0-9]+ +0
total +24 +1 " "… a row for plate 2 (24 wells, 1 without samples: not a problem) and the totals"
like "$out" "would create $n_want2 well link\(s\) and remove 0 image link\(s\)" "… and what it would do"
is "$(links_sum)" "$sum0" "… changed nothing (well and image links, events, eventlog)"

j=$(ou --json annotations move-to-wells --plate 2)
is "$(jq -c '.exit_code, .result.dry_run, [.result.plates[] | keys] , (.result.totals | keys)' <<<"$j" | tr '\n' ' ')" \
  '0 true [["image_links","links_already_on_well","links_created","links_removed","plate_id","wells","wells_without_samples"]] ["image_links","links_already_on_well","links_created","links_removed","plates","wells","wells_without_samples"] ' \
  "--json: dry_run, one object per plate and totals with the documented keys"
is "$(jq -r '.result.plates[0] | [.plate_id, .wells, .wells_without_samples, .links_created, .links_removed] | @tsv' <<<"$j")" \
  "$(printf '2\t24\t1\t%s\t0' "$n_want2")" "… plate 2: 24 wells, 1 without samples, $n_want2 to create (the oracle's count)"
is "$(jq -r '.result.plates[0].image_links' <<<"$j")" \
  "$(q mw_db -c "SELECT count(*) FROM imageannotationlink il JOIN wellsample ws ON ws.image = il.parent JOIN well w ON w.id = ws.well WHERE w.plate = 2")" \
  "… image_links: the image links on plate 2's images"
is "$(jq -r '[.result.totals.links_created, .result.totals.plates] | @tsv' <<<"$j")" "$(printf '%s\t1' "$n_want2")" "… totals add up"
is "$(links_sum)" "$sum0" "… still nothing changed"

# ---- apply -------------------------------------------------------------------------------------------
wl0=$(n_wl) il0=$(n_il)
before2=$(well_links "w.plate = 2")
j=$(ou --json annotations move-to-wells --plate 2 --apply --batch-size 5)
is "$(jq -r '[.exit_code, .result.dry_run, .result.totals.links_created, .result.totals.links_removed] | @tsv' <<<"$j")" \
  "$(printf '0\tfalse\t%s\t0' "$n_want2")" "--apply --plate 2 (batches of 5 wells): creates the $n_want2 links the dry run announced"
is "$(n_wl)" "$((wl0 + n_want2))" "… wellannotationlink has $n_want2 more rows"
is "$(n_il)" "$il0" "… no image link removed"
is "$(comm -13 <(sort <<<"$before2") <(well_links "w.plate = 2" | sort))" "$(sort <<<"$want2")" "… exactly the (well, annotation, owner) triples of the oracle"
is "$(count "$(missing "w.plate = 2")")" 0 "… nothing left to move on plate 2"
is "$(q mw_db -c "SELECT count(*) FROM (SELECT parent, child, owner_id FROM wellannotationlink GROUP BY 1, 2, 3 HAVING count(*) > 1) d")" 0 \
  "… no duplicate well link"
is "$(well_links "w.id = 2 AND wl.child BETWEEN 84 AND 90" | grep -c .)" 10 "fixture well 2, annotations 84-90: its 2 links plus 8 new ones (84 of alice was already there)"

sum1=$(links_sum)
out=$(mw --plate 2 --apply 2>&1); rc=$?
is "$rc" 0 "--apply again: exit 0"
like "$out" "done: 0 well link\(s\) created, 0 image link\(s\) removed \(nothing left to move\)" "… creates nothing"
unlike "$out" "DRY RUN" "… and does not call itself a dry run"
is "$(links_sum)" "$sum1" "… and changes nothing (not even events)"

# ---- ids from files, kinds, screens -----------------------------------------------------------------
want_tags=$(missing "w.plate = 3 AND a.discriminator = '/basic/text/tag/'")
printf '# plate 3\n3\n' > "$t/plates.txt"
j=$(ou --json annotations move-to-wells --plate-file "$t/plates.txt" --kind tag)
is "$(jq -r '[.result.plates[0].plate_id, .result.totals.links_created] | @tsv' <<<"$j")" "$(printf '3\t%s' "$(count "$want_tags")")" \
  "--plate-file and --kind tag: the tags of plate 3 only ($(count "$want_tags"))"
j=$(ou --json annotations move-to-wells --screen 1)
is "$(jq -r '.result.totals.links_created' <<<"$j")" "$(count "$(missing "w.plate IN (SELECT child FROM screenplatelink WHERE parent = 1)")")" \
  "--screen 1: the wells of its plates"
is "$(jq -r '[.result.plates[].plate_id] | join(",")' <<<"$j")" "1,2,3" "… plates 1 (no wells), 2 and 3"
printf '5\n6 7\n' > "$t/wells.txt"
j=$(ou --json annotations move-to-wells --well-file "$t/wells.txt" --well 8)
is "$(jq -r '[.result.totals.wells, .result.totals.links_created] | @tsv' <<<"$j")" \
  "$(printf '4\t%s' "$(count "$(missing "w.id IN (5, 6, 7, 8)")")")" "--well-file and --well: wells 5-8"

# ---- remove image links ------------------------------------------------------------------------------
j=$(ou --json annotations move-to-wells --plate 2 --remove-image-links)
n_rm=$(jq -r '.result.totals.links_removed' <<<"$j")
ok "$([ "$n_rm" -gt 0 ]; echo $?)" "dry run --remove-image-links: announces $n_rm image link(s) to remove"
is "$(jq -r '.result.totals.links_created' <<<"$j")" 0 "… and nothing to create (done above)"
is "$(n_il)" "$il0" "… removes nothing"
j=$(ou --json annotations move-to-wells --plate 2 --remove-image-links --apply)
is "$(jq -r '[.exit_code, .result.totals.links_removed] | @tsv' <<<"$j")" "$(printf '0\t%s' "$n_rm")" "--remove-image-links --apply: removes them"
is "$(n_il)" "$((il0 - n_rm))" "… imageannotationlink has $n_rm rows fewer"
is "$(q mw_db -c "SELECT count(*) FROM imageannotationlink il JOIN wellsample ws ON ws.image = il.parent
                   JOIN well w ON w.id = ws.well WHERE w.plate = 2
                    AND NOT EXISTS (SELECT 1 FROM wellannotationlink wl WHERE wl.parent = w.id AND wl.child = il.child AND wl.owner_id = il.owner_id)")" 0 \
  "… every annotation of plate 2 is still on its well for its owner"
is "$(count "$(missing "w.plate = 2")")" 0 "… nothing to move there any more"

# ---- could not run -------------------------------------------------------------------------------------
sum2=$(links_sum)
out=$(mw --plate 2,999999,888888 --apply 2>&1); rc=$?
is "$rc" 2 "plates that do not exist: exit 2"
like "$out" "error: 2 of the 3 plate id\(s\) given do not exist: Missing plate ids: \{888888,999999\}" "… the extension's message, naming them"
is "$(links_sum)" "$sum2" "… nothing changed"
j=$(ou --json annotations move-to-wells --well 999999)
is "$(jq -r '.exit_code, .status' <<<"$j" | tr '\n' ' ')" "2 error " "--json: exit_code 2, status error"
like "$(jq -r '.errors[0]' <<<"$j")" "well id\(s\) given do not exist.*999999" "… the error names the well"
out=$(mw --plate 2 --kind bogus 2>&1); rc=$?
is "$rc" 2 "an unknown kind: exit 2"
like "$out" "unknown annotation kind \"bogus\": Known kinds: .*tag" "… listing the known kinds"
out=$(mw --plate 2,x 2>&1); rc=$?
is "$rc" 2 "an id that is not a number: exit 2"
like "$out" "not a plate id: 'x'" "… refused before connecting"
out=$(mw --apply 2>&1); rc=$?
is "$rc" 2 "no screen, plate or well: exit 2"
like "$out" "choose the wells" "… says what is missing"
out=$(mw --plate 2 --batch-size 0 2>&1); rc=$?
is "$rc" 2 "--batch-size 0: exit 2"
is "$(links_sum)" "$sum2" "none of these changed anything"

psql -X -q -d mw_db -c "DROP EXTENSION omero_upgrade"
out=$(mw --plate 2 2>&1); rc=$?
is "$rc" 2 "without the extension: exit 2"
like "$out" "CREATE EXTENSION omero_upgrade" "… with how to install it"

done_testing
