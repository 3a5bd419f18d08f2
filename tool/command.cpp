// See command.hpp.
#include "command.hpp"

#include "extension_sql.hpp"

namespace ou {

Context::Context(const GlobalOptions &global, unsigned needs, std::string command)
    : global_(global), needs_(needs), command_(std::move(command))
{
}

void Context::require(unsigned need, const char *what) const
{
    if (!needs(need))
        throw std::logic_error(std::string("the command table does not give '") + command_ + "' " + what +
                               " (tool/cmd/commands.cpp)");
}

Settings &Context::settings(bool need_config)
{
    require(NeedSettings, "the settings");
    need_config = need_config || needs(NeedConfig);
    if (!settings_ || (need_config && !settings_->config_found))
        settings_ = load_settings(global_, need_config);
    return *settings_;
}

Settings Context::fresh_settings(bool need_config) const
{
    require(NeedSettings, "the settings");
    return load_settings(global_, need_config);
}

Db &Context::db()
{
    require(NeedDb, "a database connection");
    if (!db_)
        db_ = connect_db(settings());
    return *db_;
}

std::unique_ptr<Db> Context::connect(const std::string &dbname)
{
    require(NeedDb, "a database connection");
    return connect_db(settings(), dbname);
}

const std::string &Context::extension_schema()
{
    require(NeedExtension, "the extension");
    if (!schema_)
        schema_ = ext::require_schema(db());
    return *schema_;
}

void Context::require_omero_bin()
{
    require(NeedOmeroBin, "bin/omero");
    if (!bin_checked_)
        ou::require_omero_bin(settings());
    bin_checked_ = true;
}

} // namespace ou
