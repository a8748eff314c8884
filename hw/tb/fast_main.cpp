// The fast harness's driver (hw/tb/fast.py): clocks the Verilated fpim_fast_tb; each "go"
// line on stdin runs the next case directory, "done" on stdout when its results are written;
// at the end (EOF or any other line) it prints its clock cycles and CPU seconds.
#include <cstdio>
#include <ctime>
#include <cstring>
#include <memory>

#include "Vfpim_fast_tb.h"
#include "verilated.h"

int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto tb = std::make_unique<Vfpim_fast_tb>(ctx.get());
    auto tick = [&]() {
        tb->clk = 1;
        tb->eval();
        tb->clk = 0;
        tb->eval();
    };
    tb->clk = 0;
    tb->go = 0;
    for (int i = 0; i < 4; ++i) tick();  // the harness's own reset (RESET_CYCLES in fast.py)
    char line[64];
    unsigned long long cycles = 0;
    while (std::fgets(line, sizeof line, stdin)) {
        if (std::strncmp(line, "go", 2) != 0) break;
        tb->go = 1;
        tick();
        tb->go = 0;
        while (!tb->case_done && !ctx->gotFinish()) {
            tick();
            ++cycles;
        }
        if (ctx->gotFinish()) {
            std::printf("finished\n");
            std::fflush(stdout);
            return 1;
        }
        std::printf("done %llu\n", cycles);
        std::fflush(stdout);
    }
    tb->final();
    std::printf("cycles %llu cpu %.6f\n", cycles, double(std::clock()) / CLOCKS_PER_SEC);
    return 0;
}
