// Progress of the tool's long steps (README, "Design", "Progress lines"): one meter per step, so
// every step shows the same line
//   <what>: <done>/<total> <unit> (<pct>%), <rate> <unit>/s, elapsed h:mm:ss, ETA [~]h:mm:ss[; note]
// Throttled: nothing during the first 2 s, then in place about once a second on a terminal (or
// for a child of `run` on a terminal), a plain line every 10 s otherwise.
#pragma once

#include <chrono>
#include <string>

namespace ou {

// "1:02:03" (hours not padded).
std::string clock_hms(double seconds);

// One progress line. unit "bytes" shows sizes (1.5 GiB); any other unit is a count word.
// total 0: unknown (no percentage, ETA unknown). eta_s < 0: unknown. estimate: ETA shown "~".
std::string progress_line(const std::string &what, double done, double total, const std::string &unit, double elapsed_s,
                          double eta_s, bool estimate = false, const std::string &note = "");

class Meter {
public:
    Meter(std::string what, std::string unit, unsigned long long total = 0, bool estimate = false);
    void set_total(unsigned long long total) { total_ = total; }
    // Shows the line when it is due (see above).
    void update(unsigned long long done, const std::string &note = "");
    // Shows it now: a new phase worth a line of its own (a hop, a large table).
    void show(unsigned long long done, const std::string &note = "");
    // At the end: a last line (100%) if any line was shown, so a terminal keeps the final state.
    void finish(const std::string &note = "");
    double elapsed() const;
    unsigned long long done() const { return done_; }

private:
    using clock = std::chrono::steady_clock;
    void emit(const std::string &note);
    std::string what_, unit_;
    unsigned long long total_, done_ = 0;
    bool estimate_;
    bool shown_ = false, timed_ = false;
    double interval_;
    clock::time_point start_, last_;
};

} // namespace ou
