#!/usr/bin/env bash
# The undo of a move of annotations from Images to Wells (issue 14: "how to undo each one
# alone"). annotations move-to-wells --apply writes a journal (0600): the move's OMERO sessions
# and events, the ids of the well links it created, the full rows of the image links it removed.
# --undo JOURNAL (a dry run unless --apply) deletes exactly the well links the move created — a
# well link someone made afterwards stays, as does one that was on the well before — gives the
# removed image links back as they were (same ids, owners, events), records both as OMERO events
# (eventlog rows), and says so; a second undo does nothing. The run's wells step journals too, and
# its report's "undo alone" line, run as printed, undoes it.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_wu LOGIN" postgres
fixture_db wu_db --version OMERO5.4__0 --owner omero_wu
psql -X -q -U omero_wu -d wu_db -c "CREATE EXTENSION omero_upgrade"
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 wu_db omero_wu
ou() { "$TOOL" --server-dir "$srv" "$@"; }
# Every row of a link table, ordered (everything an undo must give back).
rows() { q wu_db -c "SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY id), '')) FROM $1 l ${2:-}"; }
n() { q wu_db -c "SELECT count(*) FROM $1"; }

wl0=$(rows wellannotationlink); il0=$(rows imageannotationlink); nwl0=$(n wellannotationlink); nil0=$(n imageannotationlink)
ev0=$(n eventlog)
j=$(ou --json annotations move-to-wells --plate 2 --remove-image-links --apply --journal "$t/j/move.json"); rc=$?
is "$rc" 0 "move-to-wells --plate 2 --remove-image-links --apply"
made=$(jq -r .result.totals.links_created <<<"$j"); gone=$(jq -r .result.totals.links_removed <<<"$j")
ok "$([ "$made" -gt 0 ] && [ "$gone" -gt 0 ]; echo $?)" "… created $made well link(s), removed $gone image link(s)"
is "$(jq -r '[.result.journal, .result.journal_links_created, .result.journal_image_links_removed] | map(tostring) | join(" ")' <<<"$j")" \
  "$t/j/move.json $made $gone" "… the journal holds exactly those links"
is "$(stat -c %a "$t/j/move.json") $(stat -c %a "$t/j")" "600 700" "… private (0600 in a 0700 directory)"
sessions=$(jq -r '.sessions | join(",")' "$t/j/move.json")
is "$(q wu_db -c "SELECT count(*) FROM wellannotationlink l JOIN event e ON e.id = l.creation_id WHERE e.session IN ($sessions)")" "$made" \
  "… its sessions are the move's: their events created the $made links"

# Others work on after the move: a well link of plate 2 made by someone else (another event), an
# image link made afterwards, and one link the move created edited (update_id changed).
other_ev=$(q wu_db -c "SELECT min(id) FROM event")
q wu_db <<SQL >/dev/null
INSERT INTO wellannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
SELECT ome_nextval('seq_wellannotationlink'), -120, 0, w.id, a.id, $other_ev, w.group_id, w.owner_id, $other_ev
  FROM well w, annotation a
 WHERE w.plate = 2 AND NOT EXISTS (SELECT 1 FROM wellannotationlink x WHERE x.parent = w.id AND x.child = a.id AND x.owner_id = w.owner_id)
 ORDER BY w.id, a.id LIMIT 1;
INSERT INTO imageannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
SELECT ome_nextval('seq_imageannotationlink'), -120, 0, i.id, a.id, $other_ev, i.group_id, i.owner_id, $other_ev
  FROM image i, annotation a
 WHERE NOT EXISTS (SELECT 1 FROM imageannotationlink x WHERE x.parent = i.id AND x.child = a.id AND x.owner_id = i.owner_id)
 ORDER BY i.id DESC, a.id LIMIT 1;
UPDATE wellannotationlink SET update_id = $other_ev, version = 1
 WHERE id = (SELECT min(l.id) FROM wellannotationlink l JOIN event e ON e.id = l.creation_id WHERE e.session IN ($sessions));
SQL
others_wl=$(q wu_db -c "SELECT id FROM wellannotationlink WHERE creation_id = $other_ev ORDER BY id DESC LIMIT 1")
others_il=$(q wu_db -c "SELECT id FROM imageannotationlink WHERE creation_id = $other_ev ORDER BY id DESC LIMIT 1")
ok "$([ -n "$others_wl" ] && [ -n "$others_il" ]; echo $?)" "someone else made well link $others_wl and image link $others_il after the move"

wl1=$(rows wellannotationlink); il1=$(rows imageannotationlink)
out=$(ou annotations move-to-wells --undo "$t/j/move.json" 2>&1); rc=$?
is "$rc" 0 "--undo without --apply: a dry run (exit 0)"
like "$out" "DRY RUN: would delete and give back: $made well link\(s\) the move created, $gone image link\(s\) it removed" \
  "… says what it would delete and give back"
is "$(rows wellannotationlink) $(rows imageannotationlink)" "$wl1 $il1" "… and changes nothing"

ev1=$(n eventlog)
j=$(ou --json annotations move-to-wells --undo "$t/j/move.json" --apply); rc=$?
is "$rc" 0 "--undo --apply: exit 0"
[ "$rc" -eq 0 ] || diag "$j"
is "$(jq -r '[.result.well_links_to_delete, .result.image_links_to_restore, .result.well_links_gone_already, .result.image_links_not_restorable] | map(tostring) | join(" ")' <<<"$j")" \
  "$made $gone 0 0" "… deleted the $made well links, gave back the $gone image links"
is "$(rows wellannotationlink "WHERE id <> $others_wl")" "$wl0" \
  "wellannotationlink is as before the move, but for the other's link (the edited one of the move gone too)"
is "$(q wu_db -c "SELECT count(*) FROM wellannotationlink WHERE id = $others_wl")" 1 "… the link someone else made survives"
is "$(n wellannotationlink)" "$((nwl0 + 1))" "… ($nwl0 + 1 rows)"
is "$(rows imageannotationlink "WHERE id <> $others_il")" "$il0" \
  "imageannotationlink is as before the move, row for row (same ids, owners, events), but for the other's new link"
is "$(n imageannotationlink)" "$((nil0 + 1))" "… ($nil0 + 1 rows)"
is "$(q wu_db -c "SELECT count(*) FILTER (WHERE action = 'DELETE' AND entitytype = 'ome.model.annotations.WellAnnotationLink') || ' ' ||
                         count(*) FILTER (WHERE action = 'INSERT' AND entitytype = 'ome.model.annotations.ImageAnnotationLink')
                    FROM eventlog WHERE id > (SELECT max(id) FROM eventlog) - $(( $(n eventlog) - ev1 ))")" "$made $gone" \
  "… each change in the eventlog (the indexer sees it)"
is "$(q wu_db -c "SELECT count(*) FROM session WHERE message = 'omero_upgrade: annotations moved to Wells given back to the Images' AND closed IS NOT NULL")" 1 \
  "… in one closed session of its own"
is "$(jq -r '[.status, .undone.well_links_deleted, .undone.image_links_restored] | map(tostring) | join(" ")' "$t/j/move.json")" \
  "undone $made $gone" "the journal says it was undone"

wl2=$(rows wellannotationlink); il2=$(rows imageannotationlink)
out=$(ou annotations move-to-wells --undo "$t/j/move.json" --apply 2>&1); rc=$?
is "$rc" 0 "a second undo: exit 0"
like "$out" "was undone already" "… says it was undone already"
is "$(rows wellannotationlink) $(rows imageannotationlink)" "$wl2 $il2" "… and changes nothing"
out=$(ou annotations move-to-wells --plate 2 --apply --journal "$t/j/move.json" 2>&1); rc=$?
is "$rc" 2 "a new move into an undone journal is refused (exit 2)"
like "$out" "was undone" "… naming why"

# --- a journal of another database -----------------------------------------------------------
createdb -T wu_db -O omero_wu wu_other
out=$(ou -d wu_other annotations move-to-wells --undo "$t/j/move.json" 2>&1); rc=$?
is "$rc" 2 "--undo on another database than the journal's: refused (exit 2)"
like "$out" "is of the database wu_db, not wu_other" "… naming both"

# --- the run's wells step: journaled, and its printed undo undoes it --------------------------
run_template
r=$t/run
scenario "$r" wu_run
before_wl=$(q wu_run -c "SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY id), '')) FROM wellannotationlink l")
out=$("$TOOL" --server-dir "$r/OMERO.server" run --new-server "$r/OMERO.server-5.6.3.zip" --move-annotations-to-wells plate:2 2>&1); rc=$?
is "$rc" 0 "a run with --move-annotations-to-wells plate:2 completes"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
st=$r/.omero-upgrade-run.json
jr=$(jq -r '.steps[] | select(.id == "wells") | .result.journal' "$st")
is "$jr" "$r/omero-upgrade-backups/wells-move-$(jq -r .run_id "$st").json" "… its wells step journaled in the backup directory, per run"
undo=$(grep -A1 "did: created [0-9]* well annotation link" <<<"$out" | sed -n 's/^ *undo alone: \(.* --apply\) (deletes.*/\1/p')
like "$undo" "annotations move-to-wells --undo .*wells-move-.*\.json --apply" "the report's undo alone names the journal"
eval "$undo" >"$t/undo.out" 2>&1; is "$?" 0 "… and, run as printed, undoes the step"
is "$(q wu_run -c "SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY id), '')) FROM wellannotationlink l")" "$before_wl" \
  "… wellannotationlink as before the run"

done_testing
