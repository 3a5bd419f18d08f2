// See completion.hpp.
#include "completion.hpp"

#include <sstream>
#include <vector>

namespace ou {

namespace {

std::string words_of(const CLI::App &app)
{
    std::string w;
    auto add = [&](const std::string &s) {
        if (!s.empty())
            w += (w.empty() ? "" : " ") + s;
    };
    for (const CLI::App *sub : app.get_subcommands([](const CLI::App *s) { return !s->get_group().empty(); }))
        add(sub->get_name());
    for (const CLI::Option *o : app.get_options([](const CLI::Option *o) { return !o->get_group().empty(); })) {
        for (const auto &l : o->get_lnames())
            add("--" + l);
        for (const auto &s : o->get_snames())
            add("-" + s);
    }
    return w;
}

void walk(const CLI::App &app, const std::string &path, std::ostringstream &cases, std::vector<std::string> &paths)
{
    cases << "        '" << path << "') words='" << words_of(app) << "' ;;\n";
    paths.push_back(path);
    for (const CLI::App *sub : app.get_subcommands([](const CLI::App *s) { return !s->get_group().empty(); }))
        walk(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), cases, paths);
}

// Options taking a value: after them, file names are offered (most are files or directories),
// never subcommand names.
void value_options(const CLI::App &app, std::ostringstream &out)
{
    for (const CLI::Option *o : app.get_options())
        if (o->get_items_expected_max() > 0) {
            for (const auto &l : o->get_lnames())
                out << " --" << l;
            for (const auto &s : o->get_snames())
                out << " -" << s;
        }
    for (const CLI::App *sub : app.get_subcommands({}))
        value_options(*sub, out);
}

} // namespace

std::string bash_completion(const CLI::App &app)
{
    std::ostringstream cases, files;
    std::vector<std::string> paths;
    walk(app, "", cases, paths);
    value_options(app, files);
    const std::string globals = words_of(app);
    std::ostringstream s;
    s << "# bash completion for omero-upgrade, written by `omero-upgrade --bash-completion` from its\n"
         "# command table: do not edit.\n"
         "_omero_upgrade()\n"
         "{\n"
         "    local cur prev path='' w i words cmds\n"
         "    cur=${COMP_WORDS[COMP_CWORD]}\n"
         "    prev=${COMP_WORDS[COMP_CWORD-1]}\n"
         "    case \" " << files.str() << " \" in\n"
         "        *\" $prev \"*) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
         "    esac\n"
         "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "        w=${COMP_WORDS[i]}\n"
         "        [[ $w == -* ]] && continue\n"
         "        case \"${path:+$path }$w\" in\n";
    for (const auto &p : paths)
        if (!p.empty())
            s << "            '" << p << "') path=\"${path:+$path }$w\" ;;\n";
    s << "        esac\n"
         "    done\n"
         "    case \"$path\" in\n"
      << cases.str()
      << "        *) words='' ;;\n"
         "    esac\n"
         "    [[ -n $path ]] && words=\"$words " << globals << "\"\n"
         "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
         "}\n"
         "complete -o default -F _omero_upgrade omero-upgrade\n";
    return s.str();
}

} // namespace ou
