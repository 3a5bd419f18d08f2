-- Moving annotations from Images to Wells (extension/wells.cpp).

CREATE FUNCTION omero_annotations_move_to_wells(
    screen_ids int8[] DEFAULT NULL,
    plate_ids int8[] DEFAULT NULL,
    well_ids int8[] DEFAULT NULL,
    annotation_kind text DEFAULT NULL,
    ns text DEFAULT NULL,
    remove_image_links boolean DEFAULT false,
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000)
RETURNS TABLE (plate_id int8, wells int8, wells_without_samples int8, image_links int8,
               links_created int8, links_already_on_well int8, links_removed int8)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_annotations_move_to_wells(int8[], int8[], int8[], text, text, boolean, boolean, int) IS
  'link the annotations of the Images of the chosen Wells to the Wells (once per owner), optionally removing the image links; a dry run (the default) only reports, per plate';

CREATE PROCEDURE omero_annotations_move_to_wells_in_batches(
    screen_ids int8[] DEFAULT NULL,
    plate_ids int8[] DEFAULT NULL,
    well_ids int8[] DEFAULT NULL,
    annotation_kind text DEFAULT NULL,
    ns text DEFAULT NULL,
    remove_image_links boolean DEFAULT false,
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000,
    INOUT wells int8 DEFAULT NULL,
    INOUT links_created int8 DEFAULT NULL,
    INOUT links_removed int8 DEFAULT NULL)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells_in_batches' LANGUAGE C;
COMMENT ON PROCEDURE omero_annotations_move_to_wells_in_batches(int8[], int8[], int8[], text, text, boolean, boolean, int, int8, int8, int8) IS
  'as omero_annotations_move_to_wells, committing after each batch of wells when CALLed outside a transaction block; totals in its INOUT arguments, a NOTICE per plate';
