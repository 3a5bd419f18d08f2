// See checksum.hpp.
#include "checksum.hpp"
#include "common.hpp"
#include "fsutil.hpp"

#include <openssl/evp.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace ou {

namespace {

std::string hex(const unsigned char *d, unsigned n)
{
    static const char *digits = "0123456789abcdef";
    std::string h;
    for (unsigned i = 0; i < n; i++) {
        h += digits[d[i] >> 4];
        h += digits[d[i] & 15];
    }
    return h;
}

struct Ctx {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    Ctx()
    {
        if (!c || EVP_DigestInit_ex(c, EVP_sha256(), nullptr) != 1)
            throw CommandError("internal: cannot initialise SHA-256");
    }
    ~Ctx() { EVP_MD_CTX_free(c); }
    void update(const void *d, size_t n) { EVP_DigestUpdate(c, d, n); }
    std::string final()
    {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        EVP_DigestFinal_ex(c, md, &n);
        return hex(md, n);
    }
};

// Files below dir, relative names, sorted.
void walk(const std::string &dir, const std::string &rel, std::vector<std::string> &files)
{
    auto names = dir_entries(dir + (rel.empty() ? "" : "/" + rel));
    if (!names)
        throw CommandError("cannot read directory " + dir + "/" + rel + ": " + std::strerror(errno));
    for (const auto &n : *names) {
        std::string r = rel.empty() ? n : rel + "/" + n;
        struct stat st;
        if (lstat((dir + "/" + r).c_str(), &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk(dir, r, files);
        else
            files.push_back(r);
    }
    std::sort(files.begin(), files.end());
}

} // namespace

std::string sha256_file(const std::string &path, const std::function<void(unsigned long long)> &progress)
{
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw CommandError("cannot read " + path + ": " + std::strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    Ctx ctx;
    std::vector<char> buf(1 << 20);
    unsigned long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            throw CommandError("cannot read " + path + ": " + std::strerror(e));
        }
        if (n == 0)
            break;
        ctx.update(buf.data(), n);
        total += n;
        if (progress)
            progress(total);
    }
    close(fd);
    return ctx.final();
}

std::string sha256_string(const std::string &data)
{
    Ctx ctx;
    ctx.update(data.data(), data.size());
    return ctx.final();
}

ChecksumList compute_checksums(const std::string &path, const std::string &name,
                               const std::function<void(unsigned long long)> &progress)
{
    ChecksumList l;
    if (!is_directory(path)) {
        l.emplace_back(sha256_file(path, progress), name);
        return l;
    }
    std::vector<std::string> files;
    walk(path, "", files);
    unsigned long long before = 0;
    for (const auto &f : files) {
        unsigned long long last = 0;
        l.emplace_back(sha256_file(path + "/" + f,
                                   [&](unsigned long long n) {
                                       last = n;
                                       if (progress)
                                           progress(before + n);
                                   }),
                       name + "/" + f);
        before += last;
    }
    return l;
}

std::string format_sidecar(const ChecksumList &l)
{
    std::string s;
    for (const auto &[h, n] : l)
        s += h + "  " + n + "\n";
    return s;
}

ChecksumList parse_sidecar(const std::string &text, const std::string &sidecar_path)
{
    ChecksumList l;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        // "<64 hex>  <name>" (two spaces, or " *" for binary mode)
        if (line.size() < 67 || line.find_first_not_of("0123456789abcdef") != 64 || line[64] != ' ' ||
            (line[65] != ' ' && line[65] != '*'))
            throw CommandError(sidecar_path + " is not a sha256sum checksum file (line: " + line.substr(0, 80) + ")");
        l.emplace_back(line.substr(0, 64), line.substr(66));
    }
    if (l.empty())
        throw CommandError(sidecar_path + " is empty");
    return l;
}

std::vector<std::string> verify_checksums(const std::string &dir, const std::string &name,
                                          const std::function<void(unsigned long long)> &progress,
                                          const std::string &data)
{
    std::vector<std::string> problems;
    std::string path = dir + "/" + name;
    std::string sidecar = path + ".sha256";
    std::string text;
    if (!read_file(sidecar, text)) {
        problems.push_back("no checksum file " + sidecar + ": the dump cannot be verified (a dump made by hand, "
                           "e.g. pg_dump -Fc? adopt it with: omero-upgrade backup import " + shell_quote(path) + ")");
        return problems;
    }
    ChecksumList want;
    try {
        want = parse_sidecar(text, sidecar);
    } catch (const CommandError &e) {
        problems.push_back(e.what());
        return problems;
    }
    if (!path_exists(data.empty() ? path : data)) {
        problems.push_back(path + " does not exist");
        return problems;
    }
    std::map<std::string, std::string> expected;
    for (const auto &[h, n] : want)
        expected[n] = h;
    ChecksumList got = compute_checksums(data.empty() ? path : data, name, progress);
    std::set<std::string> seen;
    for (const auto &[h, n] : got) {
        seen.insert(n);
        auto it = expected.find(n);
        if (it == expected.end())
            problems.push_back(n + ": not listed in " + sidecar);
        else if (it->second != h)
            problems.push_back(n + ": checksum mismatch (the file was altered or damaged): SHA-256 " + h +
                               ", expected " + it->second);
    }
    for (const auto &[n, h] : expected)
        if (!seen.count(n))
            problems.push_back(n + ": missing (listed in " + sidecar + ")");
    return problems;
}

} // namespace ou
