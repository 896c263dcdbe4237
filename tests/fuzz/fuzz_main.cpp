// SPDX-License-Identifier: MIT
// A main() for libFuzzer targets built without libFuzzer (gcc): run the target once over every file given,
// directly or in the directories given, so that the normal test suite replays the corpus.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv);
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace
{

void collect(const std::string &path, std::vector<std::string> &out)
{
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        fprintf(stderr, "%s: not found\n", path.c_str());
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        out.push_back(path);
        return;
    }
    DIR *d = opendir(path.c_str());
    while (struct dirent *e = readdir(d))
        if (e->d_name[0] != '.') collect(path + "/" + e->d_name, out);
    closedir(d);
}

std::vector<uint8_t> slurp(const std::string &path)
{
    std::vector<uint8_t> d;
    FILE *f = fopen(path.c_str(), "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read\n", path.c_str());
        exit(1);
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        d.insert(d.end(), buf, buf + n);
    fclose(f);
    return d;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    std::vector<std::string> files;
    for (int i = 1; i < argc; i++)
        collect(argv[i], files);
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        fprintf(stderr, "no inputs\n");
        return 1;
    }
    for (const std::string &f : files) {
        std::vector<uint8_t> d = slurp(f);
        fprintf(stderr, "%s (%zu bytes)\n", f.c_str(), d.size());
        LLVMFuzzerTestOneInput(d.data(), d.size());
    }
    printf("%zu inputs ran\n", files.size());
    return 0;
}
