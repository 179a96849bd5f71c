/* sigreset: what resetting every signal disposition costs in a new child, against the ways to
 * find out which ones need it. Every exec'd child of procsup (and of posix_spawn, which queries
 * all of them) pays the reset on the restart path, between clone and execve.
 *   gcc -O2 -o /tmp/sigreset bench/probes/sigreset.c && /tmp/sigreset
 * Prints µs per round: 64 x sigaction(SIG_DFL) (what the launcher does), 64 x sigaction query
 * (what finding the ignored ones in the parent would cost), and one read of /proc/self/stat's
 * ignored-signal mask (the one bulk interface). clone3's CLONE_CLEAR_SIGHAND resets the handled
 * signals for free, but ignored ones survive it, and a cached ignored set goes stale when the
 * program ignores a signal later: so the launcher keeps the full reset by default, and only a
 * parent that ignores and catches nothing skips it (child_setup::reset_signal_dispositions:
 * the procsup program, which makes what it was started with ignored default again). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    enum { rounds = 2000 };
    struct sigaction dfl = {0}, old;
    dfl.sa_handler = SIG_DFL;
    for (int pass = 0; pass < 3; pass++) {
        long long t0 = now_ns();
        for (int r = 0; r < rounds; r++)
            for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
        long long t1 = now_ns();
        for (int r = 0; r < rounds; r++)
            for (int s = 1; s < NSIG; s++) sigaction(s, NULL, &old);
        long long t2 = now_ns();
        char buf[4096];
        for (int r = 0; r < rounds; r++) {
            int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
            if (fd < 0 || read(fd, buf, sizeof buf) <= 0) return 1;
            close(fd);
        }
        long long t3 = now_ns();
        printf("reset all: %.1f us   query all: %.1f us   /proc/self/stat: %.1f us\n", (t1 - t0) / 1e3 / rounds,
               (t2 - t1) / 1e3 / rounds, (t3 - t2) / 1e3 / rounds);
    }
    return 0;
}
