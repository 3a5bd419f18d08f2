#include "dump_sql.hpp"

#include "common.hpp"
#include "process.hpp"

#include <sstream>

namespace ou {

namespace {

// One SQL identifier at the start of s (after pos): "quoted ""like"" this" or plain up to a
// space or ';'. Moves pos past it; "" when there is none.
std::string ident_at(const std::string &s, size_t &pos)
{
    std::string id;
    if (pos < s.size() && s[pos] == '"') {
        for (size_t i = pos + 1; i < s.size(); i++) {
            if (s[i] != '"') {
                id += s[i];
            } else if (i + 1 < s.size() && s[i + 1] == '"') {
                id += '"';
                i++;
            } else {
                pos = i + 1;
                return id;
            }
        }
        return "";  // unterminated
    }
    size_t end = s.find_first_of(" ;", pos);
    if (end == std::string::npos)
        end = s.size();
    id = s.substr(pos, end - pos);
    pos = end;
    return id;
}

// The identifier that ends s (a statement without its ';'), and where it begins; false when s
// does not end with one. Quoted identifiers read the same backwards ("" pairs, then one quote).
bool ident_at_end(const std::string &s, std::string &id, size_t &begin)
{
    if (s.empty())
        return false;
    if (s.back() != '"') {
        size_t sp = s.rfind(' ');
        begin = sp == std::string::npos ? 0 : sp + 1;
        id = s.substr(begin);
        return !id.empty() && id.find('"') == std::string::npos;
    }
    for (size_t j = s.size() - 1; j-- > 0;) {
        if (s[j] != '"')
            continue;
        if (j > 0 && s[j - 1] == '"') {
            j--;
            continue;
        }
        begin = j;
        size_t p = j;
        id = ident_at(s, p);
        return p == s.size();
    }
    return false;
}

bool starts_with(const std::string &s, const char *prefix)
{
    return s.rfind(prefix, 0) == 0;
}

} // namespace

DumpObjects parse_dump_sql(const std::string &sql)
{
    DumpObjects d;
    std::istringstream in(sql);
    std::string line;
    static const std::string owner_to = " OWNER TO ";
    while (std::getline(in, line)) {
        if (line.empty() || line.back() != ';')
            continue;
        std::string stmt = line.substr(0, line.size() - 1);
        if (starts_with(stmt, "ALTER ")) {
            std::string role;
            size_t begin = 0;
            if (!ident_at_end(stmt, role, begin) || begin < owner_to.size() ||
                stmt.compare(begin - owner_to.size(), owner_to.size(), owner_to) != 0)
                continue;
            std::string object = stmt.substr(6, begin - owner_to.size() - 6);
            if (object == "SCHEMA public")
                d.public_owner = role;
            else
                d.owned[role].push_back(object);
        } else if (starts_with(stmt, "CREATE EXTENSION ")) {
            size_t pos = 17;
            if (stmt.compare(pos, 14, "IF NOT EXISTS ") == 0)
                pos += 14;
            DumpExtension e;
            e.name = ident_at(stmt, pos);
            if (stmt.compare(pos, 13, " WITH SCHEMA ") == 0) {
                pos += 13;
                e.schema = ident_at(stmt, pos);
            }
            if (!e.name.empty())
                d.extensions.push_back(e);
        } else if ((starts_with(stmt, "GRANT ") || starts_with(stmt, "REVOKE ")) &&
                   (stmt.find(" ON SCHEMA public TO ") != std::string::npos ||
                    stmt.find(" ON SCHEMA public FROM ") != std::string::npos)) {
            d.public_privileges = true;
        }
    }
    return d;
}

DumpObjects read_dump_objects(const std::string &dump_path)
{
    ProcOptions o;
    o.timeout_s = 600;
    ProcResult r = run_process({"pg_restore", "--schema-only", "--file=-", dump_path}, o);
    if (!r.ok())
        throw CommandError("pg_restore --schema-only " + r.describe() + ": " + r.err_tail(3));
    return parse_dump_sql(r.out);
}

} // namespace ou
