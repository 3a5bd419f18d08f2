// Around the calls into the omero_upgrade extension (db orphans, colors, annotations): its
// NOTICEs shown as progress lines, WARNINGs as warnings, and id lists read from the command line
// or a file. The calls themselves, and where the extension is: tool/extension_sql.hpp.
#pragma once

#include "db.hpp"
#include "progress.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ou {

// Progress NOTICEs become progress lines; other NOTICEs are said; WARNINGs are warnings.
inline void show_extension_notice(const Notice &n)
{
    if (auto p = parse_progress(n)) {
        // The extension sends at most one every 2 s; shown as the tool's own meters are.
        out().progress(progress_line(p->task, (double)p->done, (double)p->total, p->unit, p->elapsed_s, p->eta_s));
    } else if (n.severity == "WARNING") {
        out().warn(n.message + (n.detail.empty() ? "" : " (" + n.detail + ")"));
    } else {
        out().say(n.message);
    }
}

inline void show_extension_notices(Db &db)
{
    db.on_notice(show_extension_notice);
}

// Ids given inline ("1,2 3") and/or in files (whitespace- or comma-separated, '#' comments),
// checked to be positive integers, as a PostgreSQL array literal for a parameter ("{1,2,3}"),
// or nullopt when none were given.
inline Value id_array(const std::vector<std::string> &inline_ids, const std::vector<std::string> &files,
                      const std::string &what)
{
    std::vector<std::string> words;
    // A bad word of the command line is shown; one of a file only by its line and column (the
    // file may be anything: --roi-file /etc/shadow must not print a line of it).
    auto split = [&](const std::string &text, const std::string *file) {
        std::istringstream in(text);
        std::string line;
        for (size_t lineno = 1; std::getline(in, line); lineno++) {
            size_t hash = line.find('#');
            if (hash != std::string::npos)
                line.resize(hash);
            for (size_t i = 0; i < line.size();) {
                char c = line[i];
                if (c == ' ' || c == ',' || c == ';' || c == '\t' || c == '\r') {
                    i++;
                    continue;
                }
                size_t end = line.find_first_of(" ,;\t\r", i);
                if (end == std::string::npos)
                    end = line.size();
                std::string w = line.substr(i, end - i);
                if (w.find_first_not_of("0123456789") != std::string::npos || w.size() > 18 || std::stoll(w) <= 0) {
                    if (file)
                        throw CommandError("not a " + what + " id at line " + std::to_string(lineno) + ", column " +
                                               std::to_string(i + 1) + " of " + *file,
                                           "the file holds positive integers separated by white space or commas, "
                                           "'#' starts a comment");
                    throw CommandError("not a " + what + " id: '" + w + "'");
                }
                words.push_back(w);
                i = end;
            }
        }
    };
    for (const auto &s : inline_ids)
        split(s, nullptr);
    for (const auto &f : files) {
        std::ifstream in(f);
        if (!in)
            throw CommandError("cannot read the " + what + " id file " + f);
        std::stringstream ss;
        ss << in.rdbuf();
        split(ss.str(), &f);
    }
    if (inline_ids.empty() && files.empty())
        return std::nullopt;
    if (words.empty())
        throw CommandError("no " + what + " ids given");
    std::string a = "{";
    for (size_t i = 0; i < words.size(); i++)
        a += (i ? "," : "") + words[i];
    return a + "}";
}

// A text[] literal for a parameter ({"a","b\"c"}): every element quoted and escaped, so any text
// stays one element. Used where CALL takes no subquery; nullopt for an empty list.
inline Value text_array(const std::vector<std::string> &items)
{
    if (items.empty())
        return std::nullopt;
    std::string a = "{";
    for (size_t i = 0; i < items.size(); i++) {
        a += i ? ",\"" : "\"";
        for (char c : items[i]) {
            if (c == '"' || c == '\\')
                a += '\\';
            a += c;
        }
        a += '"';
    }
    return a + "}";
}

} // namespace ou
