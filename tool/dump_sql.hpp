// What a dump's SQL says about who owns what: the roles that own its objects, the extensions it
// creates, and whether it changes the privileges of schema public. Read from pg_restore's own
// rendering of the dump (--schema-only to stdout), cut into statements by a lexer that keeps
// quoted names, string literals and dollar-quoted bodies whole: a name holding spaces, quotes,
// ';' or a line break cannot pass for another statement, and a function body that reads
// "CREATE EXTENSION …" is a body, not a statement.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ou {

struct DumpExtension {
    std::string name, schema;  // CREATE EXTENSION name WITH SCHEMA schema
};

struct DumpObjects {
    // role → the objects the dump gives it (ALTER … OWNER TO role), as "TABLE public.image".
    // Schema public's own owner is apart (public_owner): every new database has a public schema.
    std::map<std::string, std::vector<std::string>> owned;
    std::string public_owner;             // "" when the dump does not set it
    std::vector<DumpExtension> extensions;
    bool public_privileges = false;       // GRANT/REVOKE … ON SCHEMA public
    // Quoted names holding a carriage return or a line feed, as written ("a<LF>b"): the table of
    // contents (pg_restore --list) shows them as spaces, so its entries could not be matched.
    std::vector<std::string> crlf_names;
};

// The statements of pg_dump-written SQL, without comments and psql meta-commands; the quoted
// names holding CR or LF go to crlf_names.
std::vector<std::string> split_sql_statements(const std::string &sql, std::vector<std::string> *crlf_names);

// Parses the text of `pg_restore --schema-only --file=-` (exposed for tests of odd names).
DumpObjects parse_dump_sql(const std::string &sql);

// Runs pg_restore --schema-only on the dump and parses it (CommandError when it cannot).
DumpObjects read_dump_objects(const std::string &dump_path);

} // namespace ou
