#!/usr/bin/env bash
# omero_annotations_move_to_wells() against the plain-SQL way a DBA would write it (one
# INSERT … SELECT DISTINCT ON … WHERE NOT EXISTS, ids by ome_nextval() per row, one event), on
# the wells of 50 plates of the bench fixture (about 180,000 new links). Ours does more: an
# event per group and an eventlog row per link. Both run in BEGIN … ROLLBACK.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
db=omero_bench
bench_db "$db" OMERO5.3__1
q "$db" -c "CREATE EXTENSION IF NOT EXISTS omero_upgrade"
plain="BEGIN;
INSERT INTO event (id, permissions, \"time\", experimenter, experimentergroup, \"session\", type)
VALUES (ome_nextval('seq_event'), -52, localtimestamp, 0, 0, 0, 2);
INSERT INTO wellannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
SELECT ome_nextval('seq_wellannotationlink'), x.permissions, 0, x.well, x.child, currval('seq_event'), x.group_id,
       x.owner_id, currval('seq_event')
  FROM (SELECT DISTINCT ON (ws.well, il.child, il.owner_id) ws.well, il.child, il.owner_id, il.group_id, il.permissions
          FROM well AS w JOIN wellsample AS ws ON ws.well = w.id JOIN imageannotationlink AS il ON il.parent = ws.image
         WHERE w.plate BETWEEN 2 AND 51
         ORDER BY ws.well, il.child, il.owner_id, il.id) AS x
 WHERE NOT EXISTS (SELECT 1 FROM wellannotationlink AS l
                    WHERE l.parent = x.well AND l.child = x.child AND l.owner_id = x.owner_id);
ROLLBACK;"
ours="BEGIN; SET client_min_messages = warning;
SELECT sum(links_created) FROM omero_annotations_move_to_wells(
    plate_ids => ARRAY(SELECT generate_series(2, 51)::int8), dry_run => false);
ROLLBACK;"
t_plain=$(best_of 2 "$db" "$plain")
t_ours=$(best_of 2 "$db" "$ours")
ratio "move annotations to wells, 50 plates (plain INSERT … SELECT / omero_annotations_move_to_wells)" "$t_plain" "$t_ours"
