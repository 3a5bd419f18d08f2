// The subcommands, one set-up each (tool/command.hpp: options, add_<x>_options, run_<x>), for
// the one table of tool/cmd/commands.cpp. Nothing else calls into tool/cmd/.
#pragma once

#include "../command.hpp"

namespace ou {

CommandRun setup_annotations_move_to_wells(CLI::App &sub);  // cmd/annotations.cpp
CommandRun setup_backup(CLI::App &sub);                     // cmd/backup.cpp
CommandRun setup_backup_list(CLI::App &sub);
CommandRun setup_backup_import(CLI::App &sub);
CommandRun setup_backup_verify(CLI::App &sub);
CommandRun setup_binaries_install(CLI::App &sub);           // cmd/binaries.cpp
CommandRun setup_binaries_rollback(CLI::App &sub);
CommandRun setup_cache_clear(CLI::App &sub);                // cmd/cache.cpp
CommandRun setup_check(CLI::App &sub);                      // cmd/check.cpp
CommandRun setup_colors_convert(CLI::App &sub);             // cmd/colors.cpp
CommandRun setup_colors_revert(CLI::App &sub);
CommandRun setup_colors_status(CLI::App &sub);
CommandRun setup_config_upgrade_check(CLI::App &sub);       // cmd/config.cpp
CommandRun setup_db_orphans_scan(CLI::App &sub);            // cmd/db_orphans.cpp
CommandRun setup_db_orphans_delete(CLI::App &sub);
CommandRun setup_db_orphans_restore(CLI::App &sub);
CommandRun setup_db_to_utf8(CLI::App &sub);                 // cmd/db_to_utf8.cpp
CommandRun setup_db_plan(CLI::App &sub);                    // cmd/db_upgrade.cpp
CommandRun setup_db_upgrade(CLI::App &sub);
CommandRun setup_db_vacuum(CLI::App &sub);                  // cmd/db_vacuum.cpp
CommandRun setup_db_verify(CLI::App &sub);                  // cmd/db_verify.cpp
CommandRun setup_history(CLI::App &sub);                    // cmd/history.cpp
CommandRun setup_precheck(CLI::App &sub);                   // cmd/precheck.cpp
CommandRun setup_restore(CLI::App &sub);                    // cmd/restore.cpp
CommandRun setup_rollback(CLI::App &sub);                   // cmd/rollback.cpp
CommandRun setup_run(CLI::App &sub);                        // cmd/run.cpp
CommandRun setup_server_status(CLI::App &sub);              // cmd/server.cpp
CommandRun setup_server_stop(CLI::App &sub);
CommandRun setup_server_start(CLI::App &sub);
CommandRun setup_server_diagnostics(CLI::App &sub);
CommandRun setup_server_jvmcfg(CLI::App &sub);
CommandRun setup_status(CLI::App &sub);                     // cmd/status.cpp

} // namespace ou
