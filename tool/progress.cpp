// See progress.hpp.
#include "progress.hpp"

#include "common.hpp"

#include <cmath>
#include <cstdio>

namespace ou {

std::string clock_hms(double seconds)
{
    long s = seconds < 0 ? 0 : (long)(seconds + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    return buf;
}

namespace {

std::string amount(double n, const std::string &unit)
{
    if (unit == "bytes")
        return human_bytes((unsigned long long)(n < 0 ? 0 : n));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
}

} // namespace

std::string progress_line(const std::string &what, double done, double total, const std::string &unit, double elapsed_s,
                          double eta_s, bool estimate, const std::string &note)
{
    bool bytes = unit == "bytes";
    std::string l = what + ": " + amount(done, unit);
    if (total > 0) {
        char pct[16];
        std::snprintf(pct, sizeof pct, "%d", (int)std::floor(100.0 * std::min(done, total) / total));
        l += "/" + amount(total, unit) + (bytes ? "" : " " + unit) + " (" + pct + "%)";
    } else if (!bytes) {
        l += " " + unit;
    }
    if (elapsed_s > 0 && done > 0) {
        double rate = done / elapsed_s;
        char r[32];
        if (bytes)
            std::snprintf(r, sizeof r, "%s/s", human_bytes((unsigned long long)rate).c_str());
        else
            std::snprintf(r, sizeof r, rate < 10 ? "%.1f %s/s" : "%.0f %s/s", rate, unit.c_str());
        l += std::string(", ") + r;
    }
    l += ", elapsed " + clock_hms(elapsed_s);
    l += eta_s >= 0 ? ", ETA " + std::string(estimate ? "~" : "") + clock_hms(eta_s) : ", ETA unknown";
    if (!note.empty())
        l += "; " + note;
    return l;
}

Meter::Meter(std::string what, std::string unit, unsigned long long total, bool estimate)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), estimate_(estimate),
      interval_(out().progress_in_place() ? 1.0 : 10.0), start_(clock::now()), last_(start_)
{
}

double Meter::elapsed() const
{
    return std::chrono::duration<double>(clock::now() - start_).count();
}

void Meter::emit(const std::string &note)
{
    double el = elapsed();
    double eta = -1;
    if (total_ > 0 && done_ >= total_)
        eta = 0;
    else if (total_ > 0 && done_ > 0 && el > 0)
        eta = (double)(total_ - done_) * el / (double)done_;
    out().progress(progress_line(what_, (double)done_, (double)total_, unit_, el, eta, estimate_ && eta > 0, note));
    shown_ = true;
    last_ = clock::now();
}

void Meter::update(unsigned long long done, const std::string &note)
{
    done_ = done;
    auto now = clock::now();
    if (now - start_ < std::chrono::seconds(2))
        return;
    // The first timed line comes at 2 s even after phase lines (show()), unless one was just shown.
    double since = std::chrono::duration<double>(now - last_).count();
    if (shown_ && since < (timed_ ? interval_ : 1.0))
        return;
    timed_ = true;
    emit(note);
}

void Meter::show(unsigned long long done, const std::string &note)
{
    done_ = done;
    emit(note);
}

void Meter::finish(const std::string &note)
{
    if (!shown_)
        return;
    if (total_ > 0)
        done_ = std::max(done_, total_);
    emit(note);
}

} // namespace ou
