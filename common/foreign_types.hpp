// The columns of a table whose type, followed through domains and array elements, is not
// PostgreSQL's own and has a cast made with a function (to or from it): "name (type), …", or
// NULL when there is none. $1 is the table, quoted and qualified.
//
// A cast is looked up by type, never by search_path: an OMERO owner who changes a column of
// OMERO's table to a type of its own (an enum with the same labels) and gives that type a cast
// to text (CREATE CAST … WITH FUNCTION, allowed to the type's owner) has the cast's function run,
// with the reader's rights, by anyone who reads the column with ::text, or compares it with an
// operator of pg_catalog through an implicit cast. A cast between two built-in types can only be
// made by a superuser, and a cast from a domain is never used (its base type's are). OMERO's
// tables hold built-in types, domains over them (nonnegative_int) and enums of its own
// (unitslength), none with such a cast: a column whose type has one is refused before it is
// read. Enums, ranges and composites otherwise run only PostgreSQL's own functions when read
// (their input and output functions are built in). Shared by the extension (check_relation) and
// the tool (read_omero_state); every name is pg_catalog's.
#pragma once

namespace ou {

inline constexpr const char *foreign_column_types_sql =
    "WITH RECURSIVE t(attname, typ, depth) AS ("
    " SELECT a.attname, a.atttypid, 0 FROM pg_catalog.pg_attribute a"
    "  WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)"
    "    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"
    " UNION ALL"
    " SELECT t.attname, CASE WHEN y.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" THEN y.typbasetype"
    "                        ELSE y.typelem END, t.depth OPERATOR(pg_catalog.+) 1"
    "   FROM t JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) t.typ"
    "  WHERE (y.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.\"char\" OR y.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid)"
    "    AND t.depth OPERATOR(pg_catalog.<) 8)"
    " SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%I (%s)', t.attname, y.oid::pg_catalog.regtype), ', '"
    "                              ORDER BY pg_catalog.format('%I (%s)', t.attname, y.oid::pg_catalog.regtype))"
    "   FROM t JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) t.typ"
    "  WHERE y.typtype OPERATOR(pg_catalog.<>) 'd'::pg_catalog.\"char\""
    "    AND y.typnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace"
    "    AND EXISTS (SELECT 1 FROM pg_catalog.pg_cast k"
    "                 WHERE (k.castsource OPERATOR(pg_catalog.=) y.oid OR k.casttarget OPERATOR(pg_catalog.=) y.oid)"
    "                   AND k.castmethod OPERATOR(pg_catalog.=) 'f'::pg_catalog.\"char\")";

} // namespace ou
