#include "dump_sql.hpp"

#include "common.hpp"
#include "process.hpp"

#include <algorithm>
#include <cctype>
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

bool ident_char(char c)
{
    return std::isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

// The dollar-quote tag ("$$", "$body$") that starts at s[i], or "" when none starts there.
std::string dollar_tag_at(const std::string &s, size_t i)
{
    if (s[i] != '$' || (i > 0 && ident_char(s[i - 1])))
        return "";
    size_t j = i + 1;
    if (j < s.size() && (std::isdigit((unsigned char)s[j])))
        return "";  // $1: a parameter
    while (j < s.size() && s[j] != '$' && ident_char(s[j]))
        j++;
    return j < s.size() && s[j] == '$' ? s.substr(i, j - i + 1) : "";
}

} // namespace

std::vector<std::string> split_sql_statements(const std::string &sql, std::vector<std::string> *crlf_names)
{
    // A lexer for what pg_dump writes: comments are dropped, string literals, quoted identifiers
    // and dollar-quoted bodies are kept whole (a ';' or a line inside them ends nothing), psql's
    // meta-commands (\restrict, \connect) are lines of their own.
    std::vector<std::string> stmts;
    std::string cur;
    auto flush = [&] {
        size_t b = cur.find_first_not_of(" \t\r\n");
        if (b != std::string::npos)
            stmts.push_back(cur.substr(b));
        cur.clear();
    };
    size_t i = 0, n = sql.size();
    while (i < n) {
        char c = sql[i];
        if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            size_t e = sql.find('\n', i);
            i = e == std::string::npos ? n : e;
        } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            int depth = 0;
            while (i < n) {
                if (sql.compare(i, 2, "/*") == 0) {
                    depth++;
                    i += 2;
                } else if (sql.compare(i, 2, "*/") == 0) {
                    i += 2;
                    if (--depth == 0)
                        break;
                } else {
                    i++;
                }
            }
            cur += ' ';
        } else if (c == '\\' && cur.find_first_not_of(" \t\r\n") == std::string::npos) {
            size_t e = sql.find('\n', i);
            i = e == std::string::npos ? n : e;
            cur.clear();
        } else if (c == '\'') {
            // E'…' takes backslash escapes; pg_dump writes standard strings otherwise.
            bool esc = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && (i < 2 || !ident_char(sql[i - 2]));
            size_t j = i + 1;
            while (j < n) {
                if (esc && sql[j] == '\\') {
                    j += 2;
                } else if (sql[j] == '\'') {
                    if (j + 1 < n && sql[j + 1] == '\'')
                        j += 2;
                    else
                        break;
                } else {
                    j++;
                }
            }
            j = std::min(j + 1, n);
            cur.append(sql, i, j - i);
            i = j;
        } else if (c == '"') {
            size_t j = i + 1;
            while (j < n && !(sql[j] == '"' && !(j + 1 < n && sql[j + 1] == '"')))
                j += sql[j] == '"' ? 2 : 1;
            j = std::min(j + 1, n);
            std::string quoted = sql.substr(i, j - i);
            if (crlf_names && quoted.find_first_of("\r\n") != std::string::npos)
                crlf_names->push_back(quoted);
            cur += quoted;
            i = j;
        } else if (std::string tag = c == '$' ? dollar_tag_at(sql, i) : std::string(); !tag.empty()) {
            size_t e = sql.find(tag, i + tag.size());
            size_t j = e == std::string::npos ? n : e + tag.size();
            cur.append(sql, i, j - i);
            i = j;
        } else if (c == ';') {
            flush();
            i++;
        } else {
            cur += c;
            i++;
        }
    }
    flush();
    return stmts;
}

DumpObjects parse_dump_sql(const std::string &sql)
{
    DumpObjects d;
    static const std::string owner_to = " OWNER TO ";
    for (std::string stmt : split_sql_statements(sql, &d.crlf_names)) {
        while (!stmt.empty() && std::isspace((unsigned char)stmt.back()))
            stmt.pop_back();
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
