-- Moving annotations from Images to Wells (extension/wells.cpp).

CREATE FUNCTION @extschema@.omero_annotations_move_to_wells(
    screen_ids pg_catalog.int8[] DEFAULT NULL,
    plate_ids pg_catalog.int8[] DEFAULT NULL,
    well_ids pg_catalog.int8[] DEFAULT NULL,
    annotation_kind pg_catalog.text DEFAULT NULL,
    ns pg_catalog.text DEFAULT NULL,
    remove_image_links pg_catalog.bool DEFAULT false,
    dry_run pg_catalog.bool DEFAULT true,
    batch_size pg_catalog.int4 DEFAULT 10000)
RETURNS TABLE (plate_id pg_catalog.int8, wells pg_catalog.int8, wells_without_samples pg_catalog.int8, image_links pg_catalog.int8,
               links_created pg_catalog.int8, links_already_on_well pg_catalog.int8, links_removed pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_annotations_move_to_wells(pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.text, pg_catalog.text, pg_catalog.bool, pg_catalog.bool, pg_catalog.int4) IS
  'link the annotations of the Images of the chosen Wells to the Wells (once per owner), optionally removing the image links; a dry run (the default) only reports, per plate';

CREATE PROCEDURE @extschema@.omero_annotations_move_to_wells_in_batches(
    screen_ids pg_catalog.int8[] DEFAULT NULL,
    plate_ids pg_catalog.int8[] DEFAULT NULL,
    well_ids pg_catalog.int8[] DEFAULT NULL,
    annotation_kind pg_catalog.text DEFAULT NULL,
    ns pg_catalog.text DEFAULT NULL,
    remove_image_links pg_catalog.bool DEFAULT false,
    dry_run pg_catalog.bool DEFAULT true,
    batch_size pg_catalog.int4 DEFAULT 10000,
    INOUT wells pg_catalog.int8 DEFAULT NULL,
    INOUT links_created pg_catalog.int8 DEFAULT NULL,
    INOUT links_removed pg_catalog.int8 DEFAULT NULL)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells_in_batches' LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.omero_annotations_move_to_wells_in_batches(pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.text, pg_catalog.text, pg_catalog.bool, pg_catalog.bool, pg_catalog.int4, pg_catalog.int8, pg_catalog.int8, pg_catalog.int8) IS
  'as omero_annotations_move_to_wells, committing after each batch of wells when CALLed outside a transaction block; totals in its INOUT arguments, a NOTICE per plate';
