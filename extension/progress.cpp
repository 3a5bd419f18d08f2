// See progress.hpp.
#include "progress.hpp"

#include <cstdio>

namespace ou {

Progress::Progress(std::string task, std::string unit, int64_t total, double every_seconds)
    : task_(std::move(task)), unit_(std::move(unit)), total_(total), every_(every_seconds),
      start_(std::chrono::steady_clock::now()), last_(start_)
{
}

double Progress::elapsed() const
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, bool force)
{
    auto now = std::chrono::steady_clock::now();
    if (!force && emitted_ && std::chrono::duration<double>(now - last_).count() < every_)
        return;
    if (!force && !emitted_ && std::chrono::duration<double>(now - start_).count() < every_)
        return;
    last_ = now;
    emitted_ = true;
    double el = elapsed();
    double rate = el > 0 ? done / el : 0;
    double eta = (rate > 0 && total_ >= done) ? (total_ - done) / rate : -1;
    double pct = total_ > 0 ? 100.0 * done / total_ : 100.0;
    char eta_text[32];
    if (eta < 0)
        std::snprintf(eta_text, sizeof eta_text, "?");
    else
        std::snprintf(eta_text, sizeof eta_text, "%d:%02d:%02d", (int)eta / 3600, ((int)eta / 60) % 60, (int)eta % 60);
    char msg[512], detail[512];
    std::snprintf(msg, sizeof msg, "omero_upgrade progress: %s: %lld/%lld %s (%.1f%%), %.0f %s/s, ETA %s", task_.c_str(),
                  (long long)done, (long long)total_, unit_.c_str(), pct, rate, unit_.c_str(), eta_text);
    std::snprintf(detail, sizeof detail,
                  "{\"task\": \"%s\", \"done\": %lld, \"total\": %lld, \"unit\": \"%s\", \"elapsed_s\": %.3f, \"eta_s\": %.3f}",
                  task_.c_str(), (long long)done, (long long)total_, unit_.c_str(), el, eta);
    notice(msg, progress_detail_setting() ? std::string(detail) : std::string());
}

} // namespace ou
