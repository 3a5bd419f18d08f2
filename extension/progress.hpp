// Progress of long operations, reported by NOTICE (README, "Design"):
//   message: omero_upgrade progress: <task>: <done>/<total> <unit> (<pct>%), <rate> <unit>/s, ETA <h:mm:ss>
//   detail:  {"task": "...", "done": n, "total": n, "unit": "rows", "elapsed_s": x, "eta_s": y}
// psql users read the message; omero-upgrade parses the JSON detail. The detail is sent only when
// the setting omero_upgrade.progress_detail is on, which the tool sets on each of its connections
// (not by application_name: a -d conninfo may name its own); a psql session never sees it.
#pragma once

#include "cpp_wrapper.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace ou {

// omero_upgrade.progress_detail (boundary.cpp).
bool progress_detail_setting();

class Progress {
public:
    Progress(std::string task, std::string unit, int64_t total, double every_seconds = 2.0);
    // Emits a NOTICE if every_seconds passed since the last one (or when forced).
    void update(int64_t done, bool force = false);
    // The last NOTICE, with the final count.
    void finish(int64_t done) { update(done, true); }
    double elapsed() const;

private:
    std::string task_, unit_;
    int64_t total_;
    double every_;
    std::chrono::steady_clock::time_point start_, last_;
    bool emitted_ = false;
};

} // namespace ou
